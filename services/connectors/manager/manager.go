// Package manager is the connectors service's domain glue, with no gRPC
// types: it keeps the configured connectors, loads each one as a leased
// plugin component "connectors/exchange/<name>" of the lazy runtime (Init
// builds the feeds connector and its sequenced Stream and starts it;
// Shutdown stops it), and hands out the Stream to readers.
//
// A connector stays configured from Connect until Disconnect. In between,
// its component may be unloaded when idle (no stream open for the idle
// timeout) or preempted; the next reader loads it again from the same
// configuration (a new Stream: sequences start over at 1).
package manager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/marketdata"
	"github.com/tradsys/mesh/services/connectors/feeds"
	"go.uber.org/zap"
)

// Kind is a connector kind.
type Kind int

// Kinds.
const (
	KindSimulator Kind = iota + 1
	KindReplay
	KindBinance
)

func (k Kind) String() string {
	switch k {
	case KindSimulator:
		return "simulator"
	case KindReplay:
		return "replay"
	case KindBinance:
		return "binance"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Config is one connector's configuration; only the part of Kind is used.
type Config struct {
	Name      string // default: the kind's name
	Kind      Kind
	Simulator feeds.SimulatorConfig
	Replay    feeds.ReplayConfig
	Binance   feeds.BinanceConfig
	// Bundled replays the data set shipped with the repository.
	Bundled bool
}

// State is a connector's state as clients see it.
type State int

// States.
const (
	StateStarting State = iota + 1
	StateRunning
	StateFinished
	StateIdle
	StateStopping
	StateFailed
	StateConnecting // loaded, not connected to its venue (retrying)
)

// UnreachableError is a connector that has not reached its venue for a
// while: streams end with it so callers learn why no data comes.
type UnreachableError struct {
	Connector string
	For       time.Duration
	Attempts  uint64
	Cause     error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("connector %s has not reached its venue for %s (%d failed attempts, still retrying): %v",
		e.Connector, e.For, e.Attempts, e.Cause)
}

// Errors; the gRPC layer maps each to a code.
var (
	ErrNotFound         = errors.New("connector not found")
	ErrAlreadyConnected = errors.New("connector already connected")
	ErrUnloading        = errors.New("connector is unloading")
)

// ConfigError is a configuration the connector refused (a missing file, an
// impossible simulator setting); Field names the request field.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return fmt.Sprintf("invalid %s: %v", e.Field, e.Err) }
func (e *ConfigError) Unwrap() error { return e.Err }

// Options configure a Manager. Zero values take the seed's defaults for an
// exchange connector (75 MiB, priority 25, init timeout 45 s, idle 5 min).
type Options struct {
	Runtime      *lazy.Runtime
	Logger       *zap.Logger
	MemoryBytes  int64
	Priority     int32
	InitTimeout  time.Duration
	IdleTimeout  time.Duration
	DrainTimeout time.Duration
	// Dependencies of every exchange component (the service's own light
	// component, "connectors").
	Dependencies []string
	// RingSize is how many events per symbol each connector keeps for
	// resuming readers (default 16384: the bundled week fits).
	RingSize int
	// Announce records a component declared at run time in the
	// coordinator's registry (the service passes Runtime.Announce; nil: not
	// recorded).
	Announce func(ctx context.Context, name string) error
}

// Manager owns the connectors.
type Manager struct {
	o     Options
	log   *zap.Logger
	mu    sync.Mutex
	conns map[string]*Conn
}

// New returns an empty Manager.
func New(o Options) *Manager {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MemoryBytes <= 0 {
		o.MemoryBytes = 75 << 20
	}
	if o.Priority == 0 {
		o.Priority = 25
	}
	if o.InitTimeout <= 0 {
		o.InitTimeout = 45 * time.Second
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = 5 * time.Second
	}
	if o.RingSize <= 0 {
		o.RingSize = 16384
	}
	return &Manager{o: o, log: o.Logger, conns: map[string]*Conn{}}
}

// ComponentName is the lazy component of a connector.
func ComponentName(name string) string { return "connectors/exchange/" + name }

// Conn is one configured connector.
type Conn struct {
	m    *Manager
	name string
	comp *lazy.Component

	mu          sync.Mutex
	cfg         *Config // nil once disconnected
	kind        Kind
	conn        feeds.Connector
	stream      *feeds.Stream
	last        feeds.Stats // of the instance that ran last
	activations uint64
	symbols     []string
	lastDropped uint64 // the last instance's stream's Dropped
}

// Info is a snapshot of a connector.
type Info struct {
	Name        string
	Kind        Kind
	State       State
	Component   string
	Symbols     []string
	Stats       feeds.Stats
	Activations uint64
	Cause       string
	// RefusedSymbolEvents is how many events of new symbols the stream
	// dropped while the lease could not grow (feeds.Stream.Dropped).
	RefusedSymbolEvents uint64
}

// build makes a feeds connector from cfg.
func build(cfg *Config, log *zap.Logger) (feeds.Connector, []string, error) {
	switch cfg.Kind {
	case KindSimulator:
		c, err := feeds.NewSimulator(cfg.Simulator)
		if err != nil {
			return nil, nil, &ConfigError{Field: "simulator", Err: err}
		}
		syms := make([]string, 0, len(cfg.Simulator.Symbols))
		for _, s := range cfg.Simulator.Symbols {
			syms = append(syms, normSymbol(s.Symbol))
		}
		return c, syms, nil
	case KindReplay:
		rc := cfg.Replay
		if cfg.Bundled {
			dir, err := marketdata.Dir(marketdata.BinanceBTCUSDT1m)
			if err != nil {
				return nil, nil, &ConfigError{Field: "replay.bundled", Err: err}
			}
			rc.Paths = []string{dir}
		}
		c, err := feeds.NewReplay(rc)
		if err != nil {
			return nil, nil, &ConfigError{Field: "replay.paths", Err: err}
		}
		if _, err := c.Files(); err != nil {
			return nil, nil, &ConfigError{Field: "replay.paths", Err: err}
		}
		var syms []string
		if rc.Symbol != "" {
			syms = []string{normSymbol(rc.Symbol)}
		}
		return c, syms, nil
	case KindBinance:
		bc := cfg.Binance
		if log != nil {
			name := cfg.Name
			bc.OnError = func(err error, dialErrors uint64) {
				log.Warn("binance connector cannot reach its venue; retrying", zap.String("connector", name),
					zap.String("url", bc.URL), zap.Uint64("failed_attempts", dialErrors), zap.Error(err))
			}
		}
		c, err := feeds.NewBinance(bc)
		if err != nil {
			return nil, nil, &ConfigError{Field: "binance", Err: err}
		}
		syms := make([]string, 0, len(cfg.Binance.Symbols))
		for _, s := range cfg.Binance.Symbols {
			syms = append(syms, normSymbol(s))
		}
		return c, syms, nil
	}
	return nil, nil, &ConfigError{Field: "kind", Err: fmt.Errorf("unknown kind %d", cfg.Kind)}
}

func normSymbol(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// conn returns (creating) the Conn and its component for name.
func (m *Manager) connFor(ctx context.Context, name string) (*Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.conns[name]; c != nil {
		return c, nil
	}
	c := &Conn{m: m, name: name}
	spec := lazy.Spec{
		Name: ComponentName(name), MemoryBytes: m.o.MemoryBytes, Priority: m.o.Priority,
		Dependencies: m.o.Dependencies, InitTimeout: m.o.InitTimeout, IdleTimeout: m.o.IdleTimeout,
		DrainTimeout: m.o.DrainTimeout, Init: c.init, Shutdown: c.shutdown,
		Usage: c.usage, OnMemory: c.onMemory,
	}
	comp, err := m.o.Runtime.Get(spec.Name)
	if err != nil {
		if comp, err = m.o.Runtime.Add(spec); err != nil {
			return nil, err
		}
		if m.o.Announce != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			if err := m.o.Announce(rctx, spec.Name); err != nil {
				m.log.Warn("register connector component", zap.String("component", spec.Name), zap.Error(err))
			}
			cancel()
		}
	}
	c.comp = comp
	m.conns[name] = c
	return c, nil
}

// Connect configures a connector and loads it: it returns once the
// component is ACTIVE (memory lease granted, source started).
func (m *Manager) Connect(ctx context.Context, cfg Config) (Info, error) {
	if cfg.Name == "" {
		cfg.Name = cfg.Kind.String()
	}
	// Validate by building once; Init builds a fresh instance per load.
	if _, _, err := build(&cfg, nil); err != nil {
		return Info{}, err
	}
	c, err := m.connFor(ctx, cfg.Name)
	if err != nil {
		return Info{}, err
	}
	c.mu.Lock()
	if c.cfg != nil {
		c.mu.Unlock()
		return Info{}, fmt.Errorf("%w: %s (a %s connector); disconnect it first", ErrAlreadyConnected, cfg.Name, c.kind)
	}
	// A previous Disconnect may still be unloading it.
	if st := c.comp.Status().State; st == lazy.Draining || st == lazy.Active {
		c.mu.Unlock()
		return Info{}, fmt.Errorf("%w: %s is still unloading; retry", ErrUnloading, cfg.Name)
	}
	cp := cfg
	c.cfg, c.kind, c.symbols = &cp, cfg.Kind, nil
	c.mu.Unlock()
	if err := c.comp.Activate(ctx); err != nil {
		c.mu.Lock()
		if c.cfg == &cp {
			c.cfg = nil
		}
		c.mu.Unlock()
		return Info{}, err
	}
	return c.Info(), nil
}

// Restore configures a connector without loading it (IDLE): a definition
// kept from a previous run, loaded by its first reader.
func (m *Manager) Restore(ctx context.Context, cfg Config) error {
	if cfg.Name == "" {
		cfg.Name = cfg.Kind.String()
	}
	if _, _, err := build(&cfg, nil); err != nil {
		return err
	}
	c, err := m.connFor(ctx, cfg.Name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg != nil {
		return fmt.Errorf("%w: %s", ErrAlreadyConnected, cfg.Name)
	}
	c.cfg, c.kind, c.symbols = &cfg, cfg.Kind, nil
	return nil
}

// Disconnect stops and unloads a connector and forgets its configuration.
func (m *Manager) Disconnect(ctx context.Context, name string) (Info, error) {
	m.mu.Lock()
	c := m.conns[name]
	m.mu.Unlock()
	if c == nil {
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	c.mu.Lock()
	if c.cfg == nil {
		c.mu.Unlock()
		return Info{}, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	c.cfg = nil
	c.mu.Unlock()
	// An activation in progress must finish before it can be undone.
	for c.comp.Status().State == lazy.Activating {
		select {
		case <-ctx.Done():
			return Info{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := c.comp.Deactivate(ctx, "disconnect"); err != nil {
		return Info{}, err
	}
	info := c.Info()
	info.State = StateIdle
	return info, nil
}

// Get returns a configured connector.
func (m *Manager) Get(name string) (*Conn, error) {
	m.mu.Lock()
	c := m.conns[name]
	m.mu.Unlock()
	if c == nil || !c.configured() {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return c, nil
}

// List reports every configured connector, by name.
func (m *Manager) List() []Info {
	m.mu.Lock()
	conns := make([]*Conn, 0, len(m.conns))
	for _, c := range m.conns {
		conns = append(conns, c)
	}
	m.mu.Unlock()
	out := make([]Info, 0, len(conns))
	for _, c := range conns {
		if c.configured() {
			out = append(out, c.Info())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (c *Conn) configured() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg != nil
}

// Name is the connector's name.
func (c *Conn) Name() string { return c.name }

// Component is the connector's lazy component.
func (c *Conn) Component() *lazy.Component { return c.comp }

// Info is a snapshot of the connector.
func (c *Conn) Info() Info {
	cs := c.comp.Status()
	c.mu.Lock()
	defer c.mu.Unlock()
	info := Info{Name: c.name, Kind: c.kind, Component: c.comp.Name(), Activations: c.activations, Cause: cs.Cause,
		Symbols: slices.Clone(c.symbols), Stats: c.last}
	if c.conn != nil {
		info.Stats = c.conn.Stats()
	}
	info.RefusedSymbolEvents = c.lastDropped
	if c.stream != nil {
		info.RefusedSymbolEvents = c.stream.Dropped()
		for _, s := range c.stream.Symbols() {
			if !slices.Contains(info.Symbols, s) {
				info.Symbols = append(info.Symbols, s)
			}
		}
	}
	sort.Strings(info.Symbols)
	switch cs.State {
	case lazy.Activating:
		info.State = StateStarting
	case lazy.Active:
		info.State = StateFinished
		if info.Stats.Running {
			info.State = StateRunning
		}
		if info.Stats.Running && c.kind == KindBinance && !info.Stats.Connected {
			info.State = StateConnecting // not RUNNING: no data is coming
		}
	case lazy.Draining:
		info.State = StateStopping
	case lazy.Failed:
		info.State = StateFailed
	default:
		info.State = StateIdle
	}
	return info
}

// Stream is the running connector's event stream; only valid while the
// caller holds the component (Enter).
func (c *Conn) Stream() (*feeds.Stream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnloading, c.name)
	}
	return c.stream, nil
}

// usage is the component's Usage: what its stream's rings and retained
// events hold (the connector's own buffers are small beside them).
func (c *Conn) usage() int64 {
	c.mu.Lock()
	stream := c.stream
	c.mu.Unlock()
	if stream == nil {
		return 0
	}
	return stream.Usage()
}

// onMemory is the component's OnMemory: while its lease may not grow, the
// stream takes no new symbol (a subscription to one is refused with the
// refusal: the lease, the usage and the budget; a new symbol's events are
// dropped); the symbols it has keep flowing.
func (c *Conn) onMemory(r *lazy.Refusal) {
	c.mu.Lock()
	stream := c.stream
	c.mu.Unlock()
	if stream == nil {
		return
	}
	if r == nil {
		stream.RefuseNewSymbols(nil)
		c.m.log.Debug("connector takes new symbols again", zap.String("connector", c.name))
		return
	}
	stream.RefuseNewSymbols(r)
	c.m.log.Debug("connector's memory lease may not grow: no new symbols", zap.String("connector", c.name), zap.Error(r))
}

// ReserveSymbol makes room in the connector's lease for a ring for symbol
// before a reader makes the stream add one: it grows the lease now if the
// ring would not fit, and answers *feeds.NewSymbolRefusedError (wrapping
// the lease's refusal: the lease, the usage and the budget) if it may not
// grow. A symbol the stream has needs no room.
func (c *Conn) ReserveSymbol(ctx context.Context, stream *feeds.Stream, symbol string) error {
	if stream.Has(symbol) {
		return nil
	}
	if err := c.comp.Reserve(ctx, feeds.RingBytes(c.m.o.RingSize)); err != nil {
		return &feeds.NewSymbolRefusedError{Symbol: symbol, Err: err}
	}
	return nil
}

// init is the component's Init: a fresh connector and stream from the
// configuration, started.
func (c *Conn) init(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg == nil {
		return fmt.Errorf("%w: %s was disconnected", ErrNotFound, c.name)
	}
	conn, syms, err := build(c.cfg, c.m.log)
	if err != nil {
		return err
	}
	stream := feeds.NewStream(feeds.StreamConfig{RingSize: c.m.o.RingSize})
	// The connector outlives this call: it runs until Shutdown stops it.
	if err := conn.Start(context.WithoutCancel(ctx), stream); err != nil {
		stream.Close()
		return err
	}
	c.conn, c.stream, c.symbols = conn, stream, syms
	c.activations++
	c.m.log.Info("connector started", zap.String("connector", c.name), zap.Stringer("kind", c.kind))
	return nil
}

// shutdown is the component's Shutdown: stop the source, close the stream
// (readers get what is left, then the end).
func (c *Conn) shutdown(context.Context) error {
	c.mu.Lock()
	conn, stream := c.conn, c.stream
	c.conn, c.stream = nil, nil
	c.mu.Unlock()
	if conn != nil {
		conn.Stop()
		c.mu.Lock()
		c.last = conn.Stats()
		c.mu.Unlock()
	}
	if stream != nil {
		stream.Close()
		c.mu.Lock()
		c.lastDropped = stream.Dropped()
		c.mu.Unlock()
	}
	c.m.log.Info("connector stopped", zap.String("connector", c.name))
	return nil
}
