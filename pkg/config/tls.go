package config

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLS is a process's certificate, key and CA bundle. A service uses the
// same files on both sides (it serves and calls others with one identity);
// a client such as the CLI uses them only to call.
type TLS struct {
	CertFile string // --tls-cert
	KeyFile  string // --tls-key
	CAFile   string // --tls-ca
}

// RegisterFlags adds --tls-cert, --tls-key and --tls-ca, with the current
// values as defaults.
func (t *TLS) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&t.CertFile, "tls-cert", t.CertFile, "PEM certificate; with --tls-key and --tls-ca turns on mTLS")
	fs.StringVar(&t.KeyFile, "tls-key", t.KeyFile, "PEM private key")
	fs.StringVar(&t.CAFile, "tls-ca", t.CAFile, "PEM CA bundle that peers' certificates must chain to")
}

// Configured reports whether any certificate file was given.
func (t TLS) Configured() bool { return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" }

func (t TLS) load() (tls.Certificate, *x509.CertPool, error) {
	if t.CertFile == "" || t.KeyFile == "" || t.CAFile == "" {
		return tls.Certificate{}, nil, fmt.Errorf("mTLS needs all of --tls-cert, --tls-key and --tls-ca")
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
	}
	pem, err := os.ReadFile(t.CAFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("read --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("--tls-ca %s: no certificates found", t.CAFile)
	}
	return cert, pool, nil
}

// ServerCredentials are mTLS credentials requiring a client certificate when
// TLS is configured, and insecure ones otherwise.
func (t TLS) ServerCredentials() (credentials.TransportCredentials, error) {
	return t.credentials(true)
}

// ClientCredentials are the matching client side: our certificate plus the
// CA that servers must chain to.
func (t TLS) ClientCredentials() (credentials.TransportCredentials, error) {
	return t.credentials(false)
}

func (t TLS) credentials(server bool) (credentials.TransportCredentials, error) {
	if !t.Configured() {
		return insecure.NewCredentials(), nil
	}
	cfg, err := t.config(server)
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(cfg), nil
}

// ServerConfig is the server side of mTLS as a crypto/tls configuration
// (for HTTP servers such as the admin endpoint): our certificate, and a
// client certificate that chains to the CA required. Nil when TLS is not
// configured.
func (t TLS) ServerConfig() (*tls.Config, error) {
	if !t.Configured() {
		return nil, nil
	}
	return t.config(true)
}

// ClientConfig is the client side as a crypto/tls configuration (an
// HTTPS client of the admin endpoint); nil when TLS is not configured.
func (t TLS) ClientConfig() (*tls.Config, error) {
	if !t.Configured() {
		return nil, nil
	}
	return t.config(false)
}

func (t TLS) config(server bool) (*tls.Config, error) {
	cert, pool, err := t.load()
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	if server {
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	} else {
		cfg.RootCAs = pool
	}
	return cfg, nil
}
