package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tradsys/mesh/cmd/tradsys/internal/mesh"
	"github.com/tradsys/mesh/pkg/config"
)

func runUp(ctx context.Context, e *env, args []string) error {
	fs := e.flags("up", "[flags]")
	dataDir := fs.String("data-dir", "", "directory for logs (<dir>/logs/<name>.log), the embedded etcd (<dir>/etcd) and the services' data (default .tradsys, or .tradsys-<N> with --port-offset N)")
	budget := fs.String("memory-budget", "", "coordinator memory budget, e.g. 4GiB (default: the coordinator's, 4GiB)")
	binDir := fs.String("bin-dir", "", "directory holding tradsys-coordinator, tradsys-matching, ... (default: next to tradsys, then PATH)")
	offset := fs.Int("port-offset", 0, "added to every port (gRPC 7000, 71xx; admin 9000, 91xx; etcd 2379, 2380) to run beside another mesh")
	logFormat := fs.String("log-format", "console", "children's log format: console or json")
	startTimeout := fs.Duration("start-timeout", 60*time.Second, "how long each process may take to report SERVING")
	stopTimeout := fs.Duration("stop-timeout", 10*time.Second, "how long each process may take to exit after SIGTERM before SIGKILL")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	if *budget != "" {
		if _, err := config.ParseByteSize(*budget); err != nil {
			return usagef("--memory-budget: %v", err)
		}
	}
	if *logFormat != "console" && *logFormat != "json" {
		return usagef("--log-format %q: want console or json", *logFormat)
	}
	if *offset < 0 {
		return usagef("--port-offset %d: must not be negative", *offset)
	}
	if *dataDir == "" {
		*dataDir = DefaultStateDir(*offset)
	}
	// Progress goes to stdout for people, to stderr when stdout is JSON.
	progress := e.stdout
	if e.json() {
		progress = e.stderr
	}
	m, err := mesh.Start(ctx, mesh.Options{
		DataDir: *dataDir, BinDir: *binDir, MemoryBudget: *budget, PortOffset: *offset,
		LogFormat: *logFormat, StartTimeout: *startTimeout, StopTimeout: *stopTimeout, Progress: progress,
	})
	if err != nil {
		return fmt.Errorf("mesh did not come up: %w", err)
	}
	if err := printMesh(e, m); err != nil {
		m.Stop(nil)
		return err
	}
	if !e.json() {
		fmt.Fprintf(e.stdout, "\nmesh up; Ctrl-C stops it. Try: tradsys --coordinator %s status\n", m.CoordinatorAddr())
	}

	select {
	case <-ctx.Done():
		fmt.Fprintln(progress, "shutting down (Ctrl-C again to kill at once)")
		m.Stop(forceOnSignal())
		return nil
	case p := <-m.Exited():
		fmt.Fprintf(e.stderr, "tradsys: %s (pid %d) exited unexpectedly: %s\n--- last lines of %s ---\n%s\n",
			p.Service.Name, p.PID(), p.Exit(), p.LogPath, mesh.Tail(p.LogPath, 20))
		fmt.Fprintln(progress, "shutting down the rest")
		m.Stop(forceOnSignal())
		return fmt.Errorf("%s exited unexpectedly", p.Service.Name)
	}
}

// DefaultStateDir is where `tradsys up` keeps a mesh's state: a mesh on
// other ports (--port-offset) gets a directory of its own, so it never opens
// another mesh's etcd or truncates its logs.
func DefaultStateDir(portOffset int) string {
	if portOffset == 0 {
		return ".tradsys"
	}
	return fmt.Sprintf(".tradsys-%d", portOffset)
}

// forceOnSignal is closed by the next SIGINT or SIGTERM: during shutdown a
// second Ctrl-C kills what is left at once.
func forceOnSignal() <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	force := make(chan struct{})
	go func() {
		<-sig
		signal.Stop(sig)
		close(force)
	}()
	return force
}

type procJSON struct {
	Name     string `json:"name"`
	Endpoint string `json:"endpoint"`
	Admin    string `json:"admin"`
	State    string `json:"state"`
	PID      int    `json:"pid"`
	Log      string `json:"log"`
}

func printMesh(e *env, m *mesh.Mesh) error {
	var procs []procJSON
	for _, p := range m.Procs() {
		procs = append(procs, procJSON{p.Service.Name, p.Listen, p.Admin, "SERVING", p.PID(), p.LogPath})
	}
	skipped := []string{}
	for _, s := range m.Skipped {
		skipped = append(skipped, s.Name)
	}
	if e.json() {
		b, err := json.MarshalIndent(map[string]any{"coordinator": m.CoordinatorAddr(), "processes": procs, "skipped": skipped}, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(e.stdout, "%s\n", b)
		return err
	}
	fmt.Fprintln(e.stdout)
	return meshTable(e.stdout, procs)
}

func meshTable(w io.Writer, procs []procJSON) error {
	tw := newTable(w)
	row(tw, "NAME", "ENDPOINT", "ADMIN", "STATE", "PID")
	for _, p := range procs {
		pid := ""
		if p.PID != 0 {
			pid = fmt.Sprint(p.PID)
		}
		row(tw, p.Name, p.Endpoint, p.Admin, p.State, pid)
	}
	return tw.Flush()
}
