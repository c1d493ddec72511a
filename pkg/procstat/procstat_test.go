package procstat

import (
	"os"
	"testing"
	"time"
)

func TestRSSOfThisProcess(t *testing.T) {
	big := make([]byte, 64<<20)
	for i := range big {
		big[i] = 1 // touched, so resident
	}
	n, err := RSS(os.Getpid())
	if err != nil || n < int64(len(big)) {
		t.Fatalf("RSS %d (%v), want at least the %d bytes just touched", n, err, len(big))
	}
	if _, err := RSS(-1); err == nil {
		t.Fatal("RSS of no process: want an error")
	}
	big[0] = 0
}

func TestCPUOfThisProcess(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); time.Since(start) < 200*time.Millisecond; {
	}
	after, err := CPU(os.Getpid())
	if err != nil || after-before < 100*time.Millisecond {
		t.Fatalf("CPU went from %v to %v (%v) over 200 ms of spinning", before, after, err)
	}
	if _, err := CPU(-1); err == nil {
		t.Fatal("CPU of no process: want an error")
	}
}
