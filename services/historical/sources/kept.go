package sources

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"go.uber.org/zap"
)

// FollowsFile holds the follows asked for through the API (FollowConnector)
// in the data directory, so they survive a restart.
const FollowsFile = "follows.json"

// Follow is one kept follow request.
type Follow struct {
	Address   string   `json:"address"`
	Connector string   `json:"connector,omitempty"` // "": every connector
	Symbols   []string `json:"symbols,omitempty"`
}

// KeepFollows makes Remember write to dir/follows.json and follows again
// what a previous run kept there.
func (f *Followers) KeepFollows(dir string) error {
	path := filepath.Join(dir, FollowsFile)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var kept []Follow
	if len(data) > 0 {
		if err := json.Unmarshal(data, &kept); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	f.mu.Lock()
	f.keptPath, f.kept = path, map[string]Follow{}
	f.mu.Unlock()
	for _, k := range kept {
		if _, err := f.Follow(k.Address, k.Connector, k.Symbols); err != nil {
			f.log.Warn("kept follow no longer applies; dropped", zap.String("address", k.Address), zap.Error(err))
			continue
		}
		f.log.Info("following again", zap.String("source", SourceName(k.Address, k.Connector)))
		if err := f.Remember(k); err != nil {
			return err
		}
	}
	return nil
}

// Remember keeps a follow (no-op unless KeepFollows was called).
func (f *Followers) Remember(k Follow) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.keptPath == "" {
		return nil
	}
	name := SourceName(k.Address, k.Connector)
	if old, ok := f.kept[name]; ok && slices.Equal(old.Symbols, k.Symbols) {
		return nil
	}
	f.kept[name] = k
	names := make([]string, 0, len(f.kept))
	for n := range f.kept {
		names = append(names, n)
	}
	sort.Strings(names)
	list := make([]Follow, 0, len(names))
	for _, n := range names {
		list = append(list, f.kept[n])
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp := f.keptPath + ".tmp"
	if err := writeSynced(tmp, append(data, '\n')); err != nil {
		return err
	}
	return os.Rename(tmp, f.keptPath)
}

func writeSynced(path string, data []byte) error {
	w, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err = w.Write(data); err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
