package server_test

import (
	"fmt"
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

// When a session ends, every row it owned reads DORMANT with the cause,
// a process's rows together (one transaction, and several for a process
// with more rows than one holds).
func TestEndedSessionsRowsAllReadDormant(t *testing.T) {
	for _, rows := range []int{3, 40} {
		t.Run(fmt.Sprint(rows, " rows"), func(t *testing.T) {
			r, _ := coordtest.Start(t, coordtest.Config{})
			c := coordtest.Client(t, r.Addr())
			s := session(t, c, "svc@host:1", 10*time.Second)
			for i := range rows {
				name := fmt.Sprintf("svc/part%02d", i)
				if _, err := c.RegisterComponent(ctxT(t), &coordinatorv1.RegisterComponentRequest{Name: name, Endpoint: "host:1", MemoryBytes: 1, SessionId: s}); err != nil {
					t.Fatal(err)
				}
				if _, err := c.ReportComponentState(ctxT(t), &coordinatorv1.ReportComponentStateRequest{Name: name,
					State: coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE, SessionId: s}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := c.CloseSession(ctxT(t), &coordinatorv1.CloseSessionRequest{SessionId: s}); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, "every row DORMANT", func() bool {
				resp, err := c.ListComponents(ctxT(t), &coordinatorv1.ListComponentsRequest{})
				if err != nil {
					return false
				}
				dormant := 0
				for _, row := range resp.GetComponents() {
					if row.GetState() == coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT && strings.Contains(row.GetCause(), "owner session") {
						dormant++
					}
				}
				if dormant > 0 && dormant < min(rows, 32) {
					t.Errorf("%d of %d rows DORMANT at once: a process's rows are marked together", dormant, rows)
				}
				return dormant == rows
			})
		})
	}
}
