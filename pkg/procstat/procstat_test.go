package procstat

import (
	"os"
	"testing"
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
