package matching

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/tradsys/mesh/pkg/locks"
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

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err = fh.Write(data); err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
