// Package mesh runs a local TradSys mesh as child processes: the
// coordinator (with its embedded etcd) and every domain service binary that
// is installed. It waits for each to report SERVING on grpc.health.v1,
// watches them, and stops them in order: services first, then the
// coordinator.
package mesh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Service is one process of the mesh with its default ports.
type Service struct {
	Name      string
	Port      int // gRPC
	AdminPort int // HTTP /metrics and /healthz
}

// Binary is the executable's name: tradsys-<name>.
func (s Service) Binary() string { return "tradsys-" + s.Name }

// Coordinator is the one service the mesh cannot run without.
var Coordinator = Service{"coordinator", 7000, 9000}

// Services are the domain services, in start order; missing binaries are
// skipped. Add a line here when a service gets its main package.
var Services = []Service{
	{"historical", 7101, 9101},
	{"orders", 7102, 9102},
	{"matching", 7103, 9103},
	{"gateway", 7104, 9104},
	{"connectors", 7105, 9105},
	{"risk", 7106, 9106},
	{"strategy", 7107, 9107},
}

// Embedded etcd's default ports, moved by the port offset too.
const etcdClientPort, etcdPeerPort = 2379, 2380

// GatewayHTTPPort is the gateway's page and WebSocket endpoint.
const GatewayHTTPPort = 8080

// Symbols whose matching trades historical turns into candles in a local
// mesh (what the page and the README's first session show).
const Symbols = "BTC-USD,ETH-USD"

// Options configure a mesh.
type Options struct {
	DataDir      string // logs in DataDir/logs, etcd in DataDir/etcd
	BinDir       string // only look here when set
	MemoryBudget string // passed to the coordinator when set
	PortOffset   int    // added to every port
	Host         string // listen host, default 127.0.0.1
	LogFormat    string // children's --log-format
	StartTimeout time.Duration
	StopTimeout  time.Duration // per process, before SIGKILL
	Progress     io.Writer     // progress lines
}

// Proc is one running child.
type Proc struct {
	Service Service
	Path    string
	Args    []string
	Listen  string
	Admin   string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	ready   atomic.Bool
}

// PID is the child's process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// ExitErr is how the child exited; valid after Done.
func (p *Proc) ExitErr() error { return p.waitErr }

// Exit describes how the child ended, for people.
func (p *Proc) Exit() string {
	if p.waitErr == nil {
		return "exit status 0"
	}
	return p.waitErr.Error()
}

// Mesh is the set of running children.
type Mesh struct {
	o        Options
	lock     *os.File // DataDir/mesh.lock, flocked while the mesh runs
	mu       sync.Mutex
	procs    []*Proc
	Skipped  []Service // domain services with no binary
	stopping atomic.Bool
	exited   chan *Proc
}

// Procs lists the children in start order.
func (m *Mesh) Procs() []*Proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*Proc(nil), m.procs...)
}

// Exited delivers children that exit while the mesh is not stopping.
func (m *Mesh) Exited() <-chan *Proc { return m.exited }

// CoordinatorAddr is where the coordinator listens.
func (m *Mesh) CoordinatorAddr() string { return m.addr(Coordinator.Port) }

func (m *Mesh) addr(port int) string {
	return net.JoinHostPort(m.o.Host, strconv.Itoa(port+m.o.PortOffset))
}

func (m *Mesh) progress(format string, args ...any) {
	if m.o.Progress != nil {
		fmt.Fprintf(m.o.Progress, format+"\n", args...)
	}
}

// StartError is a start-up failure of one child, with its log tail.
type StartError struct {
	Service string
	LogPath string
	Tail    string
	Err     error
}

func (e *StartError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Service, e.Err)
	if e.LogPath != "" {
		msg += fmt.Sprintf("\n--- last lines of %s ---\n%s", e.LogPath, e.Tail)
	}
	return msg
}

func (e *StartError) Unwrap() error { return e.Err }

// Start brings the mesh up: the coordinator, then the services that exist,
// each waited for until SERVING. On any failure (or ctx cancelled) what was
// started is stopped again and the error names the service.
func Start(ctx context.Context, o Options) (*Mesh, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.LogFormat == "" {
		o.LogFormat = "console"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 10 * time.Second
	}
	if o.PortOffset < 0 || Services[len(Services)-1].AdminPort+o.PortOffset > 65535 {
		return nil, fmt.Errorf("--port-offset %d: ports would leave 1..65535", o.PortOffset)
	}
	m := &Mesh{o: o, exited: make(chan *Proc, 1+len(Services))}

	coordPath, err := FindBinary(Coordinator.Binary(), o.BinDir)
	if err != nil {
		return nil, fmt.Errorf("%w\nbuild it with: go build -o bin/%s ./services/coordinator", err, Coordinator.Binary())
	}
	type planned struct {
		svc  Service
		path string
	}
	plan := []planned{{Coordinator, coordPath}}
	for _, s := range Services {
		p, err := FindBinary(s.Binary(), o.BinDir)
		if err != nil {
			m.Skipped = append(m.Skipped, s)
			continue
		}
		plan = append(plan, planned{s, p})
	}
	// Ports first: a clear message beats a child's bind error in a log.
	// (The state directory's lock is checked after the ports because a
	// mesh on the same ports is the likelier mistake and names itself.)
	for _, p := range plan {
		ports := []int{p.svc.Port, p.svc.AdminPort}
		switch p.svc.Name {
		case Coordinator.Name:
			ports = append(ports, etcdClientPort, etcdPeerPort)
		case "gateway":
			ports = append(ports, GatewayHTTPPort)
		}
		for _, port := range ports {
			if err := checkFree(m.addr(port)); err != nil {
				return nil, fmt.Errorf("%s needs %s: %v (is a mesh already running? --port-offset moves every port)", p.svc.Name, m.addr(port), err)
			}
		}
	}
	// The state directory is this mesh's alone: its logs are truncated
	// and its etcd opened only once the lock is held.
	if m.lock, err = lockStateDir(o.DataDir, m.CoordinatorAddr()); err != nil {
		return nil, err
	}
	logDir := filepath.Join(o.DataDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		m.unlock()
		return nil, err
	}
	if len(m.Skipped) > 0 {
		var names []string
		for _, s := range m.Skipped {
			names = append(names, s.Name)
		}
		m.progress("skipping %s: no tradsys-<name> binary (not built yet?)", strings.Join(names, ", "))
	}

	fail := func(err error) (*Mesh, error) {
		m.Stop(nil)
		return nil, err
	}
	// The coordinator first: every service opens its sessions there.
	coord, err := m.spawn(plan[0].svc, plan[0].path)
	if err != nil {
		return fail(err)
	}
	if err := m.waitHealthy(ctx, coord); err != nil {
		return fail(err)
	}
	// Then every service at once; each waits for SERVING on its own.
	var started []*Proc
	for _, p := range plan[1:] {
		proc, err := m.spawn(p.svc, p.path)
		if err != nil {
			return fail(err)
		}
		started = append(started, proc)
	}
	for _, p := range started {
		if err := m.waitHealthy(ctx, p); err != nil {
			return fail(err)
		}
	}
	return m, nil
}

func (m *Mesh) argsFor(s Service) []string {
	args := []string{
		"--listen", m.addr(s.Port),
		"--admin-listen", m.addr(s.AdminPort),
		"--log-format", m.o.LogFormat,
	}
	if s != Coordinator {
		args = append(args, "--coordinator", m.CoordinatorAddr())
	}
	if s == Coordinator {
		args = append(args,
			"--data-dir", filepath.Join(m.o.DataDir, "etcd"),
			"--etcd-listen-client", m.addr(etcdClientPort),
			"--etcd-listen-peer", m.addr(etcdPeerPort),
		)
		if m.o.MemoryBudget != "" {
			args = append(args, "--memory-budget", m.o.MemoryBudget)
		}
	}
	switch s.Name {
	case "matching", "historical", "orders", "risk", "connectors":
		// Journals, snapshots, order, limit and candle stores and connector
		// definitions live beside the mesh's other state, not in whatever
		// directory `up` was started from.
		args = append(args, "--data-dir", filepath.Join(m.o.DataDir, s.Name))
	}
	matching := m.addr(serviceByName("matching").Port)
	switch s.Name {
	case "orders":
		// The order path: orders -> risk, then orders -> matching.
		args = append(args, "--risk", m.addr(serviceByName("risk").Port), "--matching", matching)
	case "risk":
		args = append(args, "--matching", matching) // the price band's last trades
	case "historical":
		// Candles of the local mesh's own trades, and of every connector's
		// market data (connectors connected later are followed too).
		args = append(args, "--trades-from", matching, "--trades-symbols", Symbols,
			"--connectors-from", m.addr(serviceByName("connectors").Port))
	case "gateway":
		args = append(args, "--http-listen", m.addr(GatewayHTTPPort),
			"--api-keys", filepath.Join(m.o.DataDir, "gateway", "api-keys"),
			"--matching", matching, "--historical", m.addr(serviceByName("historical").Port),
			"--orders", m.addr(serviceByName("orders").Port))
	case "strategy":
		args = append(args, "--data-dir", filepath.Join(m.o.DataDir, s.Name),
			"--connectors", m.addr(serviceByName("connectors").Port), "--orders", m.addr(serviceByName("orders").Port))
	}
	return args
}

func (m *Mesh) spawn(s Service, path string) (*Proc, error) {
	p := &Proc{
		Service: s, Path: path, Args: m.argsFor(s),
		Listen: m.addr(s.Port), Admin: m.addr(s.AdminPort),
		LogPath: filepath.Join(m.o.DataDir, "logs", s.Name+".log"),
		done:    make(chan struct{}),
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	p.cmd = exec.Command(path, p.Args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, &StartError{Service: s.Name, Err: err}
	}
	m.mu.Lock()
	m.procs = append(m.procs, p)
	m.mu.Unlock()
	m.progress("starting %-11s pid %-7d %s (log %s)", s.Name, p.PID(), p.Listen, p.LogPath)
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
		if !m.stopping.Load() {
			m.exited <- p // buffered for every child
		}
	}()
	return p, nil
}

// waitHealthy polls grpc.health.v1 until the child reports SERVING,
// reporting progress; it fails when the child exits, ctx ends or the start
// timeout passes.
func (m *Mesh) waitHealthy(ctx context.Context, p *Proc) error {
	conn, err := grpc.NewClient("passthrough:///"+p.Listen, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return &StartError{Service: p.Service.Name, Err: err}
	}
	defer conn.Close()
	h := healthpb.NewHealthClient(conn)
	start := time.Now()
	deadline := start.Add(m.o.StartTimeout)
	nextNote := start.Add(2 * time.Second)
	last := "no answer yet"
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := h.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		switch {
		case err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
			p.ready.Store(true)
			m.progress("ready    %-11s SERVING after %s", p.Service.Name, time.Since(start).Round(10*time.Millisecond))
			return nil
		case err == nil:
			last = "health " + resp.GetStatus().String()
		default:
			last = err.Error()
		}
		now := time.Now()
		if now.After(deadline) {
			return m.startErr(p, fmt.Errorf("not SERVING after %s (last: %s)", m.o.StartTimeout, last))
		}
		if now.After(nextNote) {
			m.progress("waiting  %-11s %s for SERVING (%s)", p.Service.Name, time.Since(start).Round(time.Second), last)
			nextNote = now.Add(2 * time.Second)
		}
		select {
		case <-ctx.Done():
			return &StartError{Service: p.Service.Name, Err: errors.New("interrupted while starting")}
		case <-p.done:
			return m.startErr(p, fmt.Errorf("exited while starting: %s", p.Exit()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (m *Mesh) startErr(p *Proc, err error) error {
	return &StartError{Service: p.Service.Name, LogPath: p.LogPath, Tail: Tail(p.LogPath, 20), Err: err}
}

// Stop ends every child: services first (all at once), then the
// coordinator. Each gets SIGTERM and StopTimeout to exit before SIGKILL;
// closing force kills whatever is still running at once.
func (m *Mesh) Stop(force <-chan struct{}) {
	m.stopping.Store(true)
	procs := m.Procs()
	var services []*Proc
	var coord *Proc
	for _, p := range procs {
		if p.Service == Coordinator {
			coord = p
		} else {
			services = append(services, p)
		}
	}
	var wg sync.WaitGroup
	for _, p := range services {
		wg.Add(1)
		go func() { defer wg.Done(); m.stopOne(p, force) }()
	}
	wg.Wait()
	if coord != nil {
		m.stopOne(coord, force)
	}
	m.unlock()
}

// lockFile is the name of the state directory's lock, which holds the
// owner's pid and coordinator address so a refusal can name them.
const lockFile = "mesh.lock"

// lockStateDir takes an exclusive flock on dir/mesh.lock, or says which
// mesh holds it. The kernel drops the lock when the holder dies, so there
// is no stale lock to clean up.
func lockStateDir(dir, coordinator string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("state directory %s is in use by another mesh (%s): stop it, or give this one its own --data-dir",
				dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		fmt.Fprintf(f, "tradsys up pid %d, coordinator %s\n", os.Getpid(), coordinator)
	}
	return f, nil
}

func (m *Mesh) unlock() {
	if m.lock != nil {
		m.lock.Close() // closing drops the flock
		m.lock = nil
	}
}

func (m *Mesh) stopOne(p *Proc, force <-chan struct{}) {
	select {
	case <-p.done:
		return // already gone (and reported)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(m.o.StopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
		m.progress("stopped  %-11s pid %d: %s", p.Service.Name, p.PID(), p.Exit())
		return
	case <-t.C:
		m.progress("killing  %-11s pid %d: still running %s after SIGTERM", p.Service.Name, p.PID(), m.o.StopTimeout)
	case <-force:
		m.progress("killing  %-11s pid %d", p.Service.Name, p.PID())
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	m.progress("stopped  %-11s pid %d: %s", p.Service.Name, p.PID(), p.Exit())
}

// FindBinary finds name in dir when dir is set; otherwise next to the
// running executable, then on PATH.
func FindBinary(name, dir string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%s not found in %s", name, dir)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			p := filepath.Join(filepath.Dir(exe), name)
			if isExecutable(p) {
				return p, nil
			}
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found next to tradsys or on PATH", name)
	}
	return p, nil
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

func checkFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		var se *os.SyscallError
		if errors.As(err, &se) {
			return se.Err // "address already in use"
		}
		return err
	}
	return l.Close()
}

// Tail returns the last n lines of the file at path (or why it cannot).
func Tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	const window = 64 << 10
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-window, 0)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(buf), "\n"), "\n")
	if off > 0 && len(lines) > 0 {
		lines = lines[1:] // a partial first line
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return "(empty log)"
	}
	return strings.Join(lines, "\n")
}

func serviceByName(name string) Service {
	for _, s := range Services {
		if s.Name == name {
			return s
		}
	}
	panic("no service " + name)
}
