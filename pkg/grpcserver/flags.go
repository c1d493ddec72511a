package grpcserver

import (
	"flag"
	"time"

	"github.com/tradsys/mesh/pkg/config"
)

// Flags are the settings every TradSys process takes (each also from its
// TRADSYS_* variable, see package config).
type Flags struct {
	Listen          string
	AdminListen     string
	Coordinator     string
	LogLevel        string
	LogFormat       string
	TLSCert         string
	TLSKey          string
	TLSCA           string
	ShutdownTimeout time.Duration
}

// Register adds the common flags to fs with a service's default addresses.
func (f *Flags) Register(fs *flag.FlagSet, listen, adminListen string) {
	// Addresses are checked as they are parsed: a bad port fails before
	// anything starts.
	f.Listen, f.AdminListen = listen, adminListen
	fs.Var(config.ListenAddr{Addr: &f.Listen}, "listen", "gRPC listen address")
	fs.Var(config.ListenAddr{Addr: &f.AdminListen, AllowEmpty: true}, "admin-listen", "HTTP address for /metrics and /healthz (empty disables)")
	fs.StringVar(&f.Coordinator, "coordinator", "127.0.0.1:7000", "coordinator gRPC address (comma-separated for several replicas)")
	fs.StringVar(&f.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.LogFormat, "log-format", "json", "log format: json or console")
	fs.StringVar(&f.TLSCert, "tls-cert", "", "PEM certificate; with --tls-key and --tls-ca turns on mTLS")
	fs.StringVar(&f.TLSKey, "tls-key", "", "PEM private key")
	fs.StringVar(&f.TLSCA, "tls-ca", "", "PEM CA bundle that peers' certificates must chain to")
	fs.DurationVar(&f.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long graceful shutdown waits for in-flight calls")
}
