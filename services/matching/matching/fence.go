package matching

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/tradsys/mesh/pkg/locks"
	"github.com/tradsys/mesh/services/matching/engine/journal"
)

// fence is a locks.Fence whose newest token survives restarts (a file in
// the data directory), so a holder that was stale before a restart is still
// refused after it.
type fence struct {
	mu    sync.Mutex
	f     *locks.Fence
	path  string
	saved uint64
}

func openFence(dir, resource string) (*fence, error) {
	f := &fence{f: &locks.Fence{Resource: resource}, path: filepath.Join(dir, "fence")}
	b, err := os.ReadFile(f.path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	if v, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); perr == nil && v > 0 {
		if err := f.f.Check(v); err != nil {
			return nil, err
		}
		f.saved = v
	}
	return f, nil
}

// check accepts token (and persists it if newer) or refuses it.
func (f *fence) check(token uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.f.Check(token); err != nil {
		return err
	}
	if token > f.saved {
		if err := writeFileAtomic(f.path, []byte(strconv.FormatUint(token, 10)+"\n")); err != nil {
			return err
		}
		f.saved = token
	}
	return nil
}

func (f *fence) newest() uint64 { return f.f.Newest() }

// writeFileAtomic is the journal's crash-safe file replacement.
var writeFileAtomic = journal.WriteFileAtomic
