// Package cli implements the tradsys commands. Every command is a function of
// a context, its arguments and two writers, so tests run them in-process
// against a real coordinator and read what they print.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tradsys/mesh/pkg/config"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // a call failed, a child died, ...
	ExitUsage = 2 // bad flags or arguments
)

// DefaultCoordinator is the coordinator's default gRPC address.
const DefaultCoordinator = config.DefaultCoordinator

// DefaultOrders and DefaultMatching are the orders and matching services'
// default gRPC addresses.
const (
	DefaultOrders   = "127.0.0.1:7102"
	DefaultMatching = "127.0.0.1:7103"
	DefaultStrategy = "127.0.0.1:7107"
)

// command is one subcommand.
type command struct {
	name    string
	args    string // argument synopsis for usage
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

var commands []command

func init() {
	// Registered here rather than in a literal so the run functions may
	// refer back to the table (help).
	commands = []command{
		{"status", "", "budget, usage, sessions, leases, locks, waiters and leader", runStatus},
		{"components", "[NAME]", "registered components and their states", runComponents},
		{"leases", "[--session S]", "granted memory leases, with what their holders report using", runLeases},
		{"budget", "[set SIZE]", "show or set the memory budget all coordinator replicas grant from", runBudget},
		{"locks", "", "held locks and their waiters", runLocks},
		{"activate", "NAME", "ask a component (and its dependencies) to activate", runActivate},
		{"deactivate", "NAME", "ask a component to drain and go dormant", runDeactivate},
		{"watch", "[--type T ...] [--session S] [--component C]", "stream coordinator events until Ctrl-C", runWatch},
		{"order", "submit|cancel|list ...", "submit, cancel or list orders through the orders service (--orders)", runOrder},
		{"positions", "[--account A] [--symbol S]", "positions built from fills (orders service)", runPositions},
		{"instruments", "[create SYMBOL --tick-size T --lot-size L | halt SYMBOL | resume SYMBOL]", "list or define instruments (orders service)", runInstruments},
		{"strategy", "start|stop|list|metrics ...", "run trading strategies (strategy service, --strategy)", runStrategy},
		{"book", "SYMBOL [--depth N]", "a symbol's order book in decimals (matching, grids from orders)", runBook},
		{"up", "[--data-dir D] [--port-offset N] ...", "run the local mesh (coordinator + services) in the foreground", runUp},
		{"probe", "[--service S] ADDR", "exit 0 if ADDR's grpc.health.v1 status is SERVING (container healthchecks)", runProbe},
		{"help", "[COMMAND]", "show help", runHelp},
	}
}

// globals are the flags every command takes, before or after its name.
type globals struct {
	client   config.Client // --coordinator and the client side of mTLS
	orders   string
	matching string
	strategy string
	output   string
	timeout  time.Duration
}

func (g *globals) register(fs *flag.FlagSet) {
	g.client.RegisterFlags(fs)
	fs.StringVar(&g.orders, "orders", g.orders, "orders service gRPC address (env TRADSYS_ORDERS)")
	fs.StringVar(&g.matching, "matching", g.matching, "matching service gRPC address, for book (env TRADSYS_MATCHING)")
	fs.StringVar(&g.strategy, "strategy", g.strategy, "strategy service gRPC address (env TRADSYS_STRATEGY)")
	fs.StringVar(&g.output, "o", g.output, "output: table or json (env TRADSYS_OUTPUT)")
	fs.StringVar(&g.output, "output", g.output, "same as -o")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "deadline for each coordinator call (env TRADSYS_TIMEOUT)")
}

func (g *globals) check() error {
	switch g.output {
	case "table", "json":
	default:
		return usagef("-o %q: want table or json", g.output)
	}
	if g.timeout <= 0 {
		return usagef("--timeout %s: must be positive", g.timeout)
	}
	if strings.TrimSpace(g.client.Coordinator) == "" {
		return usagef("--coordinator: empty address")
	}
	return nil
}

// env is what a command runs with.
type env struct {
	g      globals
	stdout io.Writer
	stderr io.Writer
}

func (e *env) json() bool { return e.g.output == "json" }

// flags is a FlagSet for command name with the global flags registered too,
// so `tradsys status -o json` works as well as `tradsys -o json status`.
func (e *env) flags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("tradsys "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	e.g.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: tradsys %s %s\n\nflags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses a command's flags, which may come before or after its
// positional arguments ("components orders -o json"; "--" ends the flags),
// checks the globals again and returns the positional arguments.
func (e *env) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{msg: err.Error(), printed: true}
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	return pos, e.g.check()
}

// usageError is a mistake in the command line: exit code 2.
type usageError struct {
	msg     string
	printed bool // flag already printed it with the usage
}

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

// Run runs the tradsys command line args (without the program name), writes
// output to stdout and diagnostics to stderr, and returns the exit code.
// Cancelling ctx is Ctrl-C: watch returns, up shuts the mesh down.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{g: globals{client: config.Client{Coordinator: DefaultCoordinator}, orders: DefaultOrders, matching: DefaultMatching, strategy: DefaultStrategy, output: "table", timeout: 10 * time.Second}, stdout: stdout, stderr: stderr}
	root := flag.NewFlagSet("tradsys", flag.ContinueOnError)
	root.SetOutput(stderr)
	e.g.register(root)
	root.Usage = func() { usage(stderr, root) }
	// The environment fills only the global flags, and only here: a command
	// flag set must not overwrite an explicit root flag with the environment.
	if err := config.Parse(root, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		if !strings.HasPrefix(err.Error(), "TRADSYS_") {
			return ExitUsage // flag printed it with the usage
		}
		fmt.Fprintln(stderr, "tradsys:", err)
		return ExitUsage
	}
	if err := e.g.check(); err != nil {
		fmt.Fprintln(stderr, "tradsys:", err)
		return ExitUsage
	}
	rest := root.Args()
	if len(rest) == 0 {
		usage(stderr, root)
		return ExitUsage
	}
	cmd, ok := lookup(rest[0])
	if !ok {
		fmt.Fprintf(stderr, "tradsys: unknown command %q (see tradsys help)\n", rest[0])
		return ExitUsage
	}
	return exitCode(stderr, cmd.run(ctx, e, rest[1:]))
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// exitCode prints err the way users read it and maps it to an exit code.
func exitCode(stderr io.Writer, err error) int {
	var u usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &u):
		if !u.printed {
			fmt.Fprintln(stderr, "tradsys:", u.msg)
		}
		return ExitUsage
	default:
		fmt.Fprintln(stderr, "tradsys:", describe(err))
		return ExitError
	}
}

func usage(w io.Writer, root *flag.FlagSet) {
	fmt.Fprintln(w, "usage: tradsys [global flags] COMMAND [flags] [args]")
	fmt.Fprintln(w, "\ncommands:")
	tw := newTable(w)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s %s\t%s\n", c.name, c.args, c.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nglobal flags (also accepted after the command):")
	root.PrintDefaults()
}

func runHelp(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		root := flag.NewFlagSet("tradsys", flag.ContinueOnError)
		root.SetOutput(e.stdout)
		e.g.register(root)
		usage(e.stdout, root)
		return nil
	}
	c, ok := lookup(args[0])
	if !ok || c.name == "help" {
		names := make([]string, 0, len(commands))
		for _, c := range commands {
			names = append(names, c.name)
		}
		sort.Strings(names)
		return usagef("help %q: unknown command; commands: %s", args[0], strings.Join(names, ", "))
	}
	fmt.Fprintf(e.stdout, "tradsys %s: %s\n", c.name, c.summary)
	e.stderr = e.stdout
	return c.run(ctx, e, []string{"-h"})
}

// noArgs rejects positional arguments.
func noArgs(fs *flag.FlagSet, pos []string) error {
	if len(pos) > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), pos[0])
	}
	return nil
}

// oneName wants exactly one positional argument.
func oneName(fs *flag.FlagSet, pos []string) (string, error) {
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		return "", usagef("%s: want exactly one component NAME, got %d arguments", fs.Name(), len(pos))
	}
	return pos[0], nil
}
