package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/proctest"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"github.com/tradsys/mesh/services/coordinator/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func leaderOf(rs []*server.Running) *server.Running {
	for _, r := range rs {
		if r != nil && r.Coord.IsLeader() {
			return r
		}
	}
	return nil
}

// Issue 9, item 4: sessions whose TTL is above the election TTL live
// through leader kills, because any replica renews a session's etcd lease
// without a leader. Three kills in a row, each followed by a fresh replica.
func TestSessionsLongerThanElectionTTLSurviveLeaderKills(t *testing.T) {
	const electionTTL, sessionTTL, kills = 2, 3 * time.Second, 3
	etcd := coordtest.Etcd(t)
	// The client knows every replica's address from the start: the
	// later replicas' ports are held until they serve them.
	ports := make([]*proctest.Port, 3+kills)
	addrs := make([]string, len(ports))
	for i := range ports {
		ports[i] = proctest.ReservePort(t)
		addrs[i] = ports[i].Addr
	}
	var rs []*server.Running
	for _, p := range ports[:3] {
		rs = append(rs, coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: electionTTL, Listener: p.Listener(t)}))
	}
	target, resolver := coordclient.Target(addrs)
	conn, err := grpc.NewClient(target, resolver, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := coordinatorv1.NewCoordinatorServiceClient(conn)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	lost := map[string]error{}
	var ids []string
	for i := range 5 {
		id := session(t, c, fmt.Sprint("s", i), sessionTTL)
		ids = append(ids, id)
		wg.Add(1)
		go func() { // a client renewing every TTL/3, as coordclient does
			defer wg.Done()
			tick := time.NewTicker(sessionTTL / 3)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				kctx, cancel := context.WithTimeout(ctx, sessionTTL/3)
				_, err := c.KeepAlive(kctx, &coordinatorv1.KeepAliveRequest{SessionId: id})
				cancel()
				if status.Code(err) == codes.NotFound {
					mu.Lock()
					lost[id] = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	for k := range kills {
		var l *server.Running
		eventually(t, 20*time.Second, "a leader", func() bool { l = leaderOf(rs); return l != nil })
		l.Kill()
		for i, r := range rs {
			if r == l {
				rs[i] = nil
			}
		}
		rs = append(rs, coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: electionTTL, Listener: ports[3+k].Listener(t)}))
		eventually(t, 20*time.Second, "a new leader", func() bool { return leaderOf(rs) != nil })
		time.Sleep(sessionTTL / 2)
	}
	stop()
	wg.Wait()
	for id, err := range lost {
		t.Errorf("session %s lost across leader kills: %v", id, err)
	}
	for _, id := range ids {
		if _, err := c.KeepAlive(ctxT(t), &coordinatorv1.KeepAliveRequest{SessionId: id}); err != nil {
			t.Errorf("session %s after %d leader kills: %v", id, kills, err)
		}
	}
}

// Issue 9, item 5: a leader killed and restarted on the same address finds
// its own old election key and takes over at once, instead of waiting out
// that key's TTL with no leader.
func TestRestartedLeaderTakesOverAtOnce(t *testing.T) {
	const electionTTL = 10
	etcd := coordtest.Etcd(t)
	r := coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: electionTTL})
	addr := r.Addr()
	eventually(t, 10*time.Second, "the replica to lead", r.Coord.IsLeader)
	c := coordtest.Client(t, addr)
	s := session(t, c, "s", 60*time.Second)
	r.Kill()

	start := time.Now()
	r2 := coordtest.Replica(t, etcd, coordtest.Config{ElectionTTL: electionTTL, Listen: addr})
	eventually(t, 2*electionTTL*time.Second, "the restarted replica to lead", r2.Coord.IsLeader)
	if took := time.Since(start); took > electionTTL*time.Second/2 {
		t.Fatalf("the restarted leader took %s to lead again (election TTL %ds)", took, electionTTL)
	}
	if _, err := c.KeepAlive(ctxT(t), &coordinatorv1.KeepAliveRequest{SessionId: s}); err != nil {
		t.Fatalf("the session from before the restart: %v", err)
	}
	if _, err := acquire(ctxT(t), c, s, "x", 1, 50, false, 0); err != nil {
		t.Fatal(err)
	}
}
