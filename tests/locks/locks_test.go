package locks_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/coordclient"
	"github.com/tradsys/mesh/pkg/locks"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
)

func dial(t *testing.T, addr, owner string) *coordclient.Client {
	c, err := coordclient.Dial(coordclient.Options{Addresses: []string{addr}, Owner: owner, TTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func TestFenceRefusesStaleHolderAgainstRealCoordinator(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	a, b := dial(t, r.Addr(), "a"), dial(t, r.Addr(), "b")
	ctx := context.Background()
	fence := &locks.Fence{Resource: "matching/algorithms"}

	first, err := locks.Acquire(ctx, a, "matching/algorithms", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := fence.Check(first.Token); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := locks.Acquire(ctx, b, "matching/algorithms", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := fence.Check(second.Token); err != nil {
		t.Fatal(err)
	}
	// a, paused through all of that, now writes with its old token.
	var stale *locks.StaleTokenError
	if err := fence.Check(first.Token); !errors.As(err, &stale) || stale.Newest != second.Token {
		t.Fatalf("stale holder accepted or wrong error: %v", err)
	}
	if err := fence.Check(0); err == nil {
		t.Fatal("zero token accepted")
	}
}

func TestWithSerialisesWork(t *testing.T) {
	r, _ := coordtest.Start(t, coordtest.Config{})
	ctx := context.Background()
	var mu sync.Mutex
	inside := 0
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		c := dial(t, r.Addr(), "w")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				err := locks.With(ctx, c, "critical", 10*time.Second, func(uint64) error {
					mu.Lock()
					inside++
					n := inside
					mu.Unlock()
					if n != 1 {
						t.Errorf("%d holders inside", n)
					}
					time.Sleep(time.Millisecond)
					mu.Lock()
					inside--
					mu.Unlock()
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}
