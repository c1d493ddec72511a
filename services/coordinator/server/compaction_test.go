package server_test

import (
	"errors"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Issue 9, item 9: every grant writes a fresh etcd key, so churn grows
// etcd's history; the leader compacts it as it goes, keeping the last
// CompactRetain revisions, so what etcd holds stays flat under churn.
func TestChurnKeepsEtcdHistoryCompacted(t *testing.T) {
	const retain, pairs = 200, 400
	etcd := coordtest.Etcd(t)
	r := coordtest.Replica(t, etcd, coordtest.Config{CompactRetain: retain})
	c := coordtest.Client(t, r.Addr())
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := ctxT(t)
	s := session(t, c, "churn", time.Minute)
	start, err := cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	for range pairs {
		l, err := acquire(ctx, c, s, "churn", 1, 50, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: s, LeaseId: l.GetLeaseId()}); err != nil {
			t.Fatal(err)
		}
	}
	var head int64
	eventually(t, 10*time.Second, "etcd's history compacted behind the head", func() bool {
		resp, err := cli.Get(ctx, "x")
		if err != nil {
			return false
		}
		head = resp.Header.Revision
		// Everything older than 2*retain behind the head is gone.
		_, err = cli.Get(ctx, "x", clientv3.WithRev(head-2*retain))
		return errors.Is(err, rpctypes.ErrCompacted)
	})
	if _, err := cli.Get(ctx, "x", clientv3.WithRev(head-retain/2)); err != nil {
		t.Fatalf("the last %d revisions are kept: %v", retain, err)
	}
	t.Logf("%d revisions of churn (from %d to %d), history kept to the last %d..%d", head-start.Header.Revision, start.Header.Revision, head, retain, 2*retain)
}

// The leader's own watch hears only deletes, and compaction never passes
// what it has read; churn of puts alone (resizes) is compacted all the same,
// because the leader asks etcd where its watch is.
func TestPutOnlyChurnIsCompactedToo(t *testing.T) {
	const retain, pairs = 100, 300
	etcd := coordtest.Etcd(t)
	r := coordtest.Replica(t, etcd, coordtest.Config{CompactRetain: retain})
	c := coordtest.Client(t, r.Addr())
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := ctxT(t)
	s := session(t, c, "resizer", time.Minute)
	l, err := acquire(ctx, c, s, "resizer", 1, 50, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	start, err := cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	for i := range pairs {
		if _, err := resize(ctx, c, s, l.GetLeaseId(), int64(2+i%2), 0); err != nil {
			t.Fatal(err)
		}
	}
	size := int64(1)
	eventually(t, 20*time.Second, "the resizes' history compacted", func() bool {
		// Keep writing (puts only) so the leader keeps checking.
		size = 3 - size
		if _, err := resize(ctx, c, s, l.GetLeaseId(), size, 0); err != nil {
			return false
		}
		_, err := cli.Get(ctx, "x", clientv3.WithRev(start.Header.Revision+retain))
		return errors.Is(err, rpctypes.ErrCompacted)
	})
}
