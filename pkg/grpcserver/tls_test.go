package grpcserver_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	"github.com/tradsys/mesh/pkg/grpcserver"
	"github.com/tradsys/mesh/pkg/proctest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMutualTLS(t *testing.T) {
	certs := proctest.PKI(t, t.TempDir(), "server", "client")
	strangers := proctest.PKI(t, t.TempDir(), "stranger") // another CA
	flags := func(c proctest.Cert, ca string) *grpcserver.Flags {
		return &grpcserver.Flags{Listen: "127.0.0.1:0", TLS: config.TLS{CertFile: c.Cert, KeyFile: c.Key, CAFile: ca}, ShutdownTimeout: time.Second}
	}
	ca := certs["server"].CA
	srv, err := grpcserver.New(grpcserver.Options{Name: "svc", Flags: flags(certs["server"], ca)})
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
	good, err := flags(certs["client"], ca).TLS.ClientCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if err := check(grpc.WithTransportCredentials(good)); err != nil {
		t.Fatalf("client with a certificate from the CA: %v", err)
	}
	if err := check(grpc.WithTransportCredentials(insecure.NewCredentials())); err == nil {
		t.Fatal("plaintext client accepted by an mTLS server")
	}
	stranger, err := flags(strangers["stranger"], ca).TLS.ClientCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if err := check(grpc.WithTransportCredentials(stranger)); err == nil {
		t.Fatal("client certificate from another CA accepted")
	}
	if _, err := (config.TLS{CertFile: "x"}).ServerCredentials(); err == nil {
		t.Fatal("partial TLS configuration accepted")
	}
}

// Issue 9, item 11: with TLS on, the admin endpoint (/metrics, /healthz)
// is HTTPS with the mesh's certificates and requires a client certificate
// from the mesh's CA, as the gRPC port does.
func TestAdminEndpointServesTLSWhenTLSIsOn(t *testing.T) {
	certs := proctest.PKI(t, t.TempDir(), "server", "scraper")
	strangers := proctest.PKI(t, t.TempDir(), "stranger")
	tlsOf := func(c proctest.Cert) config.TLS { return config.TLS{CertFile: c.Cert, KeyFile: c.Key, CAFile: c.CA} }
	srv, err := grpcserver.New(grpcserver.Options{Name: "svc", Flags: &grpcserver.Flags{Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:0",
		TLS: tlsOf(certs["server"]), ShutdownTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetServing(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	if want := "https://" + srv.AdminAddr(); srv.AdminURL() != want {
		t.Fatalf("AdminURL %q, want %q", srv.AdminURL(), want)
	}

	get := func(url string, cfg *tls.Config) (string, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return string(b), fmt.Errorf("%s: %s", url, resp.Status)
		}
		return string(b), err
	}
	scraper, err := tlsOf(certs["scraper"]).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	body, err := get(srv.AdminURL()+"/metrics", scraper)
	if err != nil || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("HTTPS with a certificate from the mesh's CA: %v\n%.300s", err, body)
	}
	if body, err := get(srv.AdminURL()+"/healthz", scraper); err != nil || !strings.Contains(body, "SERVING") {
		t.Fatalf("/healthz over HTTPS: %v %q", err, body)
	}
	if body, err := get("http://"+srv.AdminAddr()+"/metrics", nil); err == nil || strings.Contains(body, "go_goroutines") {
		t.Fatalf("plain HTTP served the metrics: %v", err)
	}
	noCert := scraper.Clone()
	noCert.Certificates = nil
	if _, err := get(srv.AdminURL()+"/metrics", noCert); err == nil {
		t.Fatal("HTTPS without a client certificate served the metrics")
	}
	stranger, err := config.TLS{CertFile: strangers["stranger"].Cert, KeyFile: strangers["stranger"].Key, CAFile: certs["server"].CA}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := get(srv.AdminURL()+"/metrics", stranger); err == nil {
		t.Fatal("a client certificate from another CA was served the metrics")
	}
}
