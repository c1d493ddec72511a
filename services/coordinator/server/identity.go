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
// of its client certificate. A replica forwarding a call presents its own
// certificate and names the original caller in metadata. That name is
// believed only from a peer whose certificate identity is one of the
// configured replica identities (--replica-identity; by default this
// replica's own): any other peer naming a caller is refused, so a client
// holding a valid certificate of the mesh cannot act as someone else. No
// replica identity may also be an operator identity (Start refuses it), so
// the certificate a person or a service uses to call can never forward.
type identities struct {
	self      string          // this replica's certificate identity; "" without TLS
	replicas  map[string]bool // identities that may forward a caller's identity
	operators map[string]bool // identities allowed operator RPCs
}

// newIdentities checks the configured identities against each other.
func newIdentities(self string, replicas, operators []string) (*identities, error) {
	ids := &identities{self: self, replicas: map[string]bool{}, operators: map[string]bool{}}
	for _, op := range operators {
		ids.operators[op] = true
	}
	if self == "" { // no TLS: no identities at all
		return ids, nil
	}
	ids.replicas[self] = true
	for _, r := range replicas {
		ids.replicas[r] = true
	}
	for r := range ids.replicas {
		if ids.operators[r] {
			return nil, fmt.Errorf("--replica-identity %q is also an --operator-identity: a replica identity may forward any caller's identity, so no client may hold it", r)
		}
	}
	return ids, nil
}

// isReplica: the peer's certificate is a coordinator replica's.
func (a *identities) isReplica(ctx context.Context) bool {
	return a.replicas[a.peerIdentity(ctx)]
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
// A forwarded caller is taken from a replica only; from anyone else the
// call is refused (rather than run under the peer's own identity) so that
// the attempt is visible to the one who made it.
func (a *identities) caller(ctx context.Context) (string, error) {
	cn := a.peerIdentity(ctx)
	if cn == "" {
		return "", nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	named := md.Get(callerKey)
	if len(named) == 0 {
		return cn, nil
	}
	if !a.replicas[cn] {
		return "", togRPCError(&coord.PermissionError{What: fmt.Sprintf(
			"%s: only a coordinator replica (--replica-identity) may name the caller of a forwarded call, not %q", callerKey, cn)})
	}
	if len(named) != 1 || named[0] == "" {
		return "", togRPCError(&coord.PermissionError{What: fmt.Sprintf("%s: want one caller identity, got %q", callerKey, named)})
	}
	return named[0], nil
}

func (a *identities) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	caller, err := a.caller(ctx)
	if err != nil {
		return nil, err
	}
	return h(coord.WithCaller(ctx, caller), req)
}

func (a *identities) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	caller, err := a.caller(ss.Context())
	if err != nil {
		return err
	}
	return h(srv, &callerStream{ServerStream: ss, ctx: coord.WithCaller(ss.Context(), caller)})
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
