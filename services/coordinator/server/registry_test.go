package server_test

import (
	"strings"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
)

// A component's row is its session's: when that session ends while no
// coordinator leads (its etcd lease expires meanwhile), the next leader
// finds the row still ACTIVE and marks it DORMANT, with the time and why.
func TestRowsOfASessionThatEndedBetweenLeadersReadDormant(t *testing.T) {
	etcd := coordtest.Etcd(t)
	r := coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: 1})
	addr := r.Addr()
	eventually(t, 10*time.Second, "the replica to lead", r.Coord.IsLeader)
	c := coordtest.Client(t, addr)
	s := session(t, c, "svc@host:1", 2*time.Second)
	if _, err := c.RegisterComponent(ctxT(t), &coordinatorv1.RegisterComponentRequest{Name: "orphan", Endpoint: "host:1", MemoryBytes: 1, SessionId: s}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReportComponentState(ctxT(t), &coordinatorv1.ReportComponentStateRequest{Name: "orphan",
		State: coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE, SessionId: s}); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	time.Sleep(4 * time.Second) // the session's 2s etcd lease expires with no coordinator
	killed := time.Now()

	r2 := coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: 1, Listen: addr})
	eventually(t, 20*time.Second, "the new replica to lead", r2.Coord.IsLeader)
	var row *coordinatorv1.Component
	eventually(t, 10*time.Second, "the orphaned row DORMANT", func() bool {
		resp, err := c.ListComponents(ctxT(t), &coordinatorv1.ListComponentsRequest{Name: "orphan"})
		if err != nil {
			return false
		}
		row = resp.GetComponents()[0]
		return row.GetState() == coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT
	})
	if !strings.Contains(row.GetCause(), "ended while no coordinator led") || row.GetStateChangedAt().AsTime().Before(killed) {
		t.Errorf("orphaned row: cause %q at %v", row.GetCause(), row.GetStateChangedAt().AsTime())
	}
}
