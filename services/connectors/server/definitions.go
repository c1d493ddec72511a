package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	connectorsv1 "github.com/tradsys/mesh/proto/tradsys/connectors/v1"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"
)

// DefinitionsFile holds the connectors' definitions in the data directory:
// the Connect requests that made them, so they survive a restart.
const DefinitionsFile = "connectors.json"

// definitionError is a change applied but not persisted.
type definitionError struct {
	connector, what string
	err             error
}

func (e *definitionError) Error() string {
	return "connector " + e.connector + " " + e.what + ": " + e.err.Error()
}
func (e *definitionError) Unwrap() error { return e.err }

// definitions keeps every connected connector's request on disk, written
// whole and atomically (temp file, fsync, rename) on each change.
type definitions struct {
	path string
	mu   sync.Mutex
	reqs map[string]*connectorsv1.ConnectRequest
}

func (d *definitions) put(name string, r *connectorsv1.ConnectRequest) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r.Name = name
	d.reqs[name] = r
	return d.saveLocked()
}

func (d *definitions) remove(name string) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.reqs, name)
	return d.saveLocked()
}

func (d *definitions) saveLocked() error {
	names := make([]string, 0, len(d.reqs))
	for n := range d.reqs {
		names = append(names, n)
	}
	sort.Strings(names)
	list := make([]json.RawMessage, 0, len(names))
	for _, n := range names {
		b, err := protojson.Marshal(d.reqs[n])
		if err != nil {
			return err
		}
		list = append(list, b)
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp := d.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err = f.Write(append(data, '\n')); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, d.path)
}

// KeepDefinitions makes the service keep its connectors' definitions in
// dir and restores the ones kept there by a previous run: configured and
// IDLE, loaded by their first reader. A definition that no longer applies
// (a replay file gone) is logged and dropped.
func (s *ConnectorService) KeepDefinitions(ctx context.Context, dir string, log *zap.Logger) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d := &definitions{path: filepath.Join(dir, DefinitionsFile), reqs: map[string]*connectorsv1.ConnectRequest{}}
	data, err := os.ReadFile(d.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(data) > 0 {
		var list []json.RawMessage
		if err := json.Unmarshal(data, &list); err != nil {
			return fmt.Errorf("%s: %w", d.path, err)
		}
		for _, raw := range list {
			r := &connectorsv1.ConnectRequest{}
			if err := protojson.Unmarshal(raw, r); err != nil {
				log.Warn("connector definition unreadable; dropped", zap.String("file", d.path), zap.Error(err))
				continue
			}
			cfg, err := configFromPB(r)
			if err == nil {
				err = s.m.Restore(ctx, cfg)
			}
			if err != nil {
				log.Warn("connector definition no longer applies; dropped", zap.String("connector", r.GetName()), zap.Error(err))
				continue
			}
			d.reqs[r.GetName()] = r
			log.Info("connector restored (idle until read)", zap.String("connector", r.GetName()))
		}
	}
	s.mu.Lock()
	s.defs = d
	s.mu.Unlock()
	return nil
}
