package coordtest

import (
	"net"
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	RemoveBuilt()
	os.Exit(code)
}

// holdFor takes addr (just let go by a killed replica) as another process
// might, and lets go of it after d.
func holdFor(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("take %s: %v", addr, err)
	}
	time.AfterFunc(d, func() { l.Close() })
}

// A replica restarted on its address while something else holds it for a
// moment starts there once it is let go: in the test process, and as a
// process (with its etcd a process too, itself restarted the same way).
func TestRestartOnAnAddressTakenForAMoment(t *testing.T) {
	const taken = 500 * time.Millisecond
	etcd := StartEtcdCluster(t, 1)
	m := etcd.Members[0]
	m.Kill()
	holdFor(t, m.Client, taken)
	start := time.Now()
	m.Restart(t)
	if time.Since(start) < taken {
		t.Fatalf("etcd restarted on %s in %s, while it was taken for %s", m.Client, time.Since(start), taken)
	}

	r := Replica(t, m.Client, Config{})
	addr := r.Addr()
	WaitServing(t, addr) // connections the replica closes at its kill stay in TIME_WAIT
	r.Kill()
	holdFor(t, addr, taken)
	start = time.Now()
	r = Replica(t, m.Client, Config{Listen: addr})
	if r.Addr() != addr || time.Since(start) < taken {
		t.Fatalf("replica restarted on %s in %s; want %s once let go (%s)", r.Addr(), time.Since(start), addr, taken)
	}

	p := StartCoordinatorProc(t, []string{m.Client})
	WaitServing(t, p.Addr)
	p.Kill()
	holdFor(t, p.Addr, taken)
	start = time.Now()
	p.Restart(t)
	if time.Since(start) < taken {
		t.Fatalf("coordinator process restarted on %s in %s, while it was taken for %s", p.Addr, time.Since(start), taken)
	}
	WaitServing(t, p.Addr)
}
