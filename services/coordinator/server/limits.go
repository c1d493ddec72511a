package server

import (
	"net"
	"sync"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coord"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// Watch limits: each watcher costs the replica its event buffer (see
// Options.WatchBuffer) and a stream, so their number is bounded in total and
// per owner (the caller's certificate identity; without TLS, its IP).
const (
	DefaultWatchBuffer         = 1024
	DefaultMaxWatchers         = 1024
	DefaultMaxWatchersPerOwner = 256
)

type watchLimits struct {
	ids             *identities
	total, perOwner int

	mu    sync.Mutex
	n     int
	owner map[string]int
}

func (l *watchLimits) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if info.FullMethod != coordinatorv1.CoordinatorService_Watch_FullMethodName {
		return h(srv, ss)
	}
	// A forwarded watch counts in this replica's total (its buffer lives
	// here) but not per owner: the replica it reached counted it per owner,
	// and here its peer is that replica. Without TLS anyone can claim to
	// forward; that escapes the per-owner limit only, never the total.
	forwarded := l.forwardedByReplica(ss)
	owner := coord.Caller(ss.Context())
	if owner == "" {
		if p, ok := peer.FromContext(ss.Context()); ok {
			owner, _, _ = net.SplitHostPort(p.Addr.String())
		}
	}
	l.mu.Lock()
	switch {
	case l.n >= l.total:
		l.mu.Unlock()
		return togRPCError(&coord.LimitError{Limit: "max-watchers", Value: l.total})
	case !forwarded && l.owner[owner] >= l.perOwner:
		l.mu.Unlock()
		return togRPCError(&coord.LimitError{Limit: "max-watchers-per-owner", Value: l.perOwner, Owner: owner})
	}
	l.n++
	if !forwarded {
		l.owner[owner]++
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.n--
		if !forwarded {
			if l.owner[owner]--; l.owner[owner] == 0 {
				delete(l.owner, owner)
			}
		}
		l.mu.Unlock()
	}()
	return h(srv, ss)
}

// forwardedByReplica: the call carries the forwarding mark and, with TLS,
// comes from a replica's certificate.
func (l *watchLimits) forwardedByReplica(ss grpc.ServerStream) bool {
	md, ok := metadata.FromIncomingContext(ss.Context())
	if !ok || len(md.Get(forwardedKey)) == 0 {
		return false
	}
	return l.ids.self == "" || l.ids.isReplica(ss.Context())
}
