package strategies

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Manager keeps the strategies: their saved configs (a JSON file in the
// data directory, replaced atomically on every change) and the running
// ones.
type Manager struct {
	path   string
	md     MarketData
	orders Orders
	log    *zap.Logger

	mu   sync.Mutex
	all  map[string]*entry
	save sync.Mutex // one file write at a time, in change order
}

type entry struct {
	Config    Config    `json:"config"`
	Running   bool      `json:"running"` // the user wants it running
	LastError string    `json:"last_error,omitempty"`
	StartedAt time.Time `json:"started_at,omitempty"`
	Metrics   Metrics   `json:"metrics"`

	run    *runner
	cancel context.CancelFunc
	done   chan struct{}
}

// Status is a strategy as List reports it.
type Status struct {
	Config    Config
	Running   bool
	Active    bool // its runner is trading now
	LastError string
	StartedAt time.Time
}

// Open loads the saved strategies from dir (none yet is fine).
func Open(dir string, md MarketData, orders Orders, log *zap.Logger) (*Manager, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	m := &Manager{path: filepath.Join(dir, "strategies.json"), md: md, orders: orders, log: log, all: map[string]*entry{}}
	b, err := os.ReadFile(m.path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	var saved []*entry
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("%s: %w", m.path, err)
	}
	for _, e := range saved {
		m.all[e.Config.Name] = e
	}
	return m, nil
}

// persist writes every strategy to the file (temp file, fsync, rename).
func (m *Manager) persist() error {
	m.save.Lock()
	defer m.save.Unlock()
	m.mu.Lock()
	list := make([]*entry, 0, len(m.all))
	for _, e := range m.all {
		if e.run != nil {
			e.Metrics = e.run.metrics()
		}
		cp := *e
		list = append(list, &cp)
	}
	m.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].Config.Name < list[j].Config.Name })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	tmp := m.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, m.path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(m.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Put saves cfg as a strategy the user wants running. The same config
// again is fine; another config under a running name is ErrConflict.
func (m *Manager) Put(cfg Config) error {
	cfg.Defaults()
	if err := cfg.Check(); err != nil {
		return err
	}
	m.mu.Lock()
	e := m.all[cfg.Name]
	switch {
	case e == nil:
		m.all[cfg.Name] = &entry{Config: cfg, Running: true}
	case e.Running && !reflect.DeepEqual(e.Config, cfg):
		m.mu.Unlock()
		return fmt.Errorf("strategy %q: %w", cfg.Name, ErrConflict)
	default:
		if e.Config.Type != cfg.Type || e.Config.Symbol != cfg.Symbol || e.Config.Account != cfg.Account {
			e.Metrics = Metrics{} // a different strategy under an old name starts from zero
		}
		e.Config, e.Running = cfg, true
	}
	m.mu.Unlock()
	return m.persist()
}

// SetStopped records that the user stopped the strategy.
func (m *Manager) SetStopped(name string) error {
	m.mu.Lock()
	e := m.all[name]
	if e == nil {
		m.mu.Unlock()
		return &NotFoundError{Name: name}
	}
	e.Running = false
	m.mu.Unlock()
	return m.persist()
}

// Get returns a strategy's config.
func (m *Manager) Get(name string) (Config, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.all[name]
	if e == nil {
		return Config{}, false, &NotFoundError{Name: name}
	}
	return e.Config, e.Running, nil
}

// Run starts the strategy's runner (its component's Init). It returns once
// the runner has its instrument, or with why it could not start.
func (m *Manager) Run(name string) error {
	m.mu.Lock()
	e := m.all[name]
	if e == nil {
		m.mu.Unlock()
		return &NotFoundError{Name: name}
	}
	if e.run != nil {
		m.mu.Unlock()
		return nil
	}
	r := newRunner(e.Config, m.md, m.orders, m.log.With(zap.String("strategy", name)), e.Metrics)
	ctx, cancel := context.WithCancel(context.Background())
	e.run, e.cancel, e.done = r, cancel, make(chan struct{})
	e.StartedAt, e.LastError = time.Now(), ""
	done := e.done
	m.mu.Unlock()
	started := make(chan error, 1)
	go func() {
		defer close(done)
		err := r.run(ctx, logicFor(r.cfg))
		if err != nil {
			started <- err
			m.mu.Lock()
			e.LastError = err.Error()
			m.mu.Unlock()
		}
	}()
	// The instrument is the first thing run asks for: a strategy on a
	// symbol orders does not know fails its start, with the cause.
	select {
	case err := <-started:
		m.mu.Lock()
		e.run, e.cancel = nil, nil
		m.mu.Unlock()
		cancel()
		return err
	case <-time.After(200 * time.Millisecond):
	case <-done:
	}
	m.log.Info("strategy running", zap.String("strategy", name), zap.String("type", string(e.Config.Type)))
	return nil
}

// Halt stops the strategy's runner (its component's Shutdown): it cancels
// the strategy's open orders and keeps its metrics.
func (m *Manager) Halt(ctx context.Context, name string) error {
	m.mu.Lock()
	e := m.all[name]
	if e == nil || e.run == nil {
		m.mu.Unlock()
		return nil
	}
	cancel, done, r := e.cancel, e.done, e.run
	m.mu.Unlock()
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.mu.Lock()
	e.Metrics = r.metrics()
	e.run, e.cancel = nil, nil
	m.mu.Unlock()
	m.log.Info("strategy stopped", zap.String("strategy", name))
	return m.persist()
}

// Usage is what the strategy holds while it runs (0 when it does not):
// its component's Usage, which its memory lease follows.
func (m *Manager) Usage(name string) int64 {
	m.mu.Lock()
	e := m.all[name]
	var r *runner
	if e != nil {
		r = e.run
	}
	m.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.usage()
}

// List is every strategy, by name.
func (m *Manager) List() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Status, 0, len(m.all))
	for _, e := range m.all {
		st := Status{Config: e.Config, Running: e.Running, Active: e.run != nil, LastError: e.LastError, StartedAt: e.StartedAt}
		if e.run != nil && st.LastError == "" {
			st.LastError = e.run.streamError()
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Config.Name < out[j].Config.Name })
	return out
}

// Metrics are a strategy's counters (kept across stops and restarts).
func (m *Manager) Metrics(name string) (Metrics, error) {
	m.mu.Lock()
	e := m.all[name]
	if e == nil {
		m.mu.Unlock()
		return Metrics{}, &NotFoundError{Name: name}
	}
	r, saved := e.run, e.Metrics
	m.mu.Unlock()
	if r != nil {
		return r.metrics(), nil
	}
	return saved, nil
}
