package grpcserver_test

import (
	"context"
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
