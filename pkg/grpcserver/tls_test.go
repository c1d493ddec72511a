package grpcserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// pki writes a CA and a certificate it signed (for 127.0.0.1) into dir.
func pki(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	parent, signer := tmpl, key
	if ca == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	} else {
		parent, signer = ca, caKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".crt", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", kder)
	return cert, key
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := pki(t, dir, "ca", nil, nil)
	pki(t, dir, "server", ca, caKey)
	pki(t, dir, "client", ca, caKey)
	otherCA, otherKey := pki(t, dir, "other-ca", nil, nil)
	pki(t, dir, "stranger", otherCA, otherKey)
	flags := func(name, caName string) *Flags {
		return &Flags{Listen: "127.0.0.1:0", TLSCert: filepath.Join(dir, name+".crt"), TLSKey: filepath.Join(dir, name+".key"),
			TLSCA: filepath.Join(dir, caName+".crt"), ShutdownTimeout: time.Second}
	}
	srv, err := New(Options{Name: "svc", Flags: flags("server", "ca")})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetServing(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)

	check := func(opt grpc.DialOption) error {
		conn, err := grpc.NewClient(srv.Addr(), opt)
		if err != nil {
			return err
		}
		defer conn.Close()
		cctx, ccancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer ccancel()
		_, err = healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
		return err
	}
	good, err := flags("client", "ca").ClientCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if err := check(grpc.WithTransportCredentials(good)); err != nil {
		t.Fatalf("client with a certificate from the CA: %v", err)
	}
	if err := check(grpc.WithTransportCredentials(insecure.NewCredentials())); err == nil {
		t.Fatal("plaintext client accepted by an mTLS server")
	}
	stranger, err := flags("stranger", "ca").ClientCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if err := check(grpc.WithTransportCredentials(stranger)); err == nil {
		t.Fatal("client certificate from another CA accepted")
	}
	if _, err := (&Flags{TLSCert: "x"}).ServerCredentials(); err == nil {
		t.Fatal("partial TLS configuration accepted")
	}
}
