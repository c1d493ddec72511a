package grpcserver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// TLSConfigured reports whether certificates were given.
func (f *Flags) TLSConfigured() bool { return f.TLSCert != "" || f.TLSKey != "" || f.TLSCA != "" }

func (f *Flags) loadTLS() (tls.Certificate, *x509.CertPool, error) {
	if f.TLSCert == "" || f.TLSKey == "" || f.TLSCA == "" {
		return tls.Certificate{}, nil, fmt.Errorf("mTLS needs all of --tls-cert, --tls-key and --tls-ca")
	}
	cert, err := tls.LoadX509KeyPair(f.TLSCert, f.TLSKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
	}
	pem, err := os.ReadFile(f.TLSCA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("read --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("--tls-ca %s: no certificates found", f.TLSCA)
	}
	return cert, pool, nil
}

// ServerCredentials are mTLS credentials requiring a client certificate when
// TLS is configured, and insecure ones otherwise.
func (f *Flags) ServerCredentials() (credentials.TransportCredentials, error) {
	if !f.TLSConfigured() {
		return insecure.NewCredentials(), nil
	}
	cert, pool, err := f.loadTLS()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}), nil
}

// ClientCredentials are the matching client side: our certificate plus the
// CA that servers must chain to.
func (f *Flags) ClientCredentials() (credentials.TransportCredentials, error) {
	if !f.TLSConfigured() {
		return insecure.NewCredentials(), nil
	}
	cert, pool, err := f.loadTLS()
	if err != nil {
		return nil, err
	}
	return credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		MinVersion:   tls.VersionTLS13,
	}), nil
}
