package server

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/tradsys/mesh/services/coordinator/coord"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// callerKey carries the caller's identity on a call a follower forwards:
// the leader sees the follower's certificate, not the caller's.
const callerKey = "x-tradsys-caller"

// identities authenticates callers under mTLS: a caller is the common name
// of its client certificate. A replica forwarding a call presents this
// replica's own identity (replicas share it) and names the original caller
// in metadata, which is believed from a replica only.
type identities struct {
	self      string          // this replica's certificate identity; "" without TLS
	operators map[string]bool // identities allowed operator RPCs
}

// certIdentity is the common name of the certificate in a PEM file.
func certIdentity(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return "", fmt.Errorf("%s: no PEM certificate", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return cert.Subject.CommonName, nil
}

// peerIdentity is the common name of the peer's verified certificate.
func (a *identities) peerIdentity(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return ""
	}
	return ti.State.VerifiedChains[0][0].Subject.CommonName
}

// caller is the authenticated identity of the call, or "" without TLS.
func (a *identities) caller(ctx context.Context) string {
	cn := a.peerIdentity(ctx)
	if cn != "" && cn == a.self {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(callerKey); len(v) == 1 && v[0] != "" {
				return v[0]
			}
		}
	}
	return cn
}

func (a *identities) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	return h(coord.WithCaller(ctx, a.caller(ctx)), req)
}

func (a *identities) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	return h(srv, &callerStream{ServerStream: ss, ctx: coord.WithCaller(ss.Context(), a.caller(ss.Context()))})
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *callerStream) Context() context.Context { return s.ctx }

// mayOperate refuses operator RPCs to callers that are not operators. It
// applies with mTLS only: without it there is no identity to check.
func (a *identities) mayOperate(ctx context.Context, what string) error {
	caller := coord.Caller(ctx)
	if caller == "" || a.operators[caller] {
		return nil
	}
	return &coord.PermissionError{What: what + ": an operator identity is needed (--operator-identity), not " + fmt.Sprintf("%q", caller)}
}
