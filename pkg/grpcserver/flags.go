package grpcserver

import (
	"flag"
	"time"

	"github.com/tradsys/mesh/pkg/config"
)

// Flags are the settings of every TradSys gRPC server (each also from its
// TRADSYS_* variable, see package config). Client settings (the coordinator's
// address) are not here: they are registered only by processes that call it.
type Flags struct {
	Listen          string
	AdminListen     string
	LogLevel        string
	LogFormat       string
	TLS             config.TLS
	ShutdownTimeout time.Duration
}

// Register adds the server flags to fs with a service's default addresses.
func (f *Flags) Register(fs *flag.FlagSet, listen, adminListen string) {
	// Addresses are checked as they are parsed: a bad port fails before
	// anything starts.
	f.Listen, f.AdminListen = listen, adminListen
	fs.Var(config.ListenAddr{Addr: &f.Listen}, "listen", "gRPC listen address")
	fs.Var(config.ListenAddr{Addr: &f.AdminListen, AllowEmpty: true}, "admin-listen", "HTTP address for /metrics and /healthz (empty disables)")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.LogFormat, "log-format", "json", "log format: json or console")
	f.TLS.RegisterFlags(fs)
	fs.DurationVar(&f.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long graceful shutdown waits for in-flight calls")
}
