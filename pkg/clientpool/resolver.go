package clientpool

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"google.golang.org/grpc/resolver"
)

// Scheme is the target scheme resolved through the registry.
const Scheme = "tradsys"

// RegistryResolver resolves "tradsys:///<component>" to the endpoint the
// component registered with the coordinator, and follows re-registrations
// (a service restarted elsewhere) through the coordinator's Watch stream.
type RegistryResolver struct {
	API coordinatorv1.CoordinatorServiceClient
	// Refresh is the fallback re-resolution period; default 10s.
	Refresh time.Duration
}

// Scheme implements resolver.Builder.
func (r *RegistryResolver) Scheme() string { return Scheme }

// Build implements resolver.Builder.
func (r *RegistryResolver) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	name := strings.TrimPrefix(t.Endpoint(), "/")
	ctx, cancel := context.WithCancel(context.Background())
	rr := &registryResolution{api: r.API, name: name, cc: cc, cancel: cancel, now: make(chan struct{}, 1)}
	refresh := r.Refresh
	if refresh <= 0 {
		refresh = 10 * time.Second
	}
	rr.wg.Add(2)
	go rr.loop(ctx, refresh)
	go rr.watch(ctx)
	return rr, nil
}

type registryResolution struct {
	api    coordinatorv1.CoordinatorServiceClient
	name   string
	cc     resolver.ClientConn
	cancel context.CancelFunc
	now    chan struct{}
	wg     sync.WaitGroup
	last   string
}

func (r *registryResolution) ResolveNow(resolver.ResolveNowOptions) {
	select {
	case r.now <- struct{}{}:
	default:
	}
}

func (r *registryResolution) Close() {
	r.cancel()
	r.wg.Wait()
}

func (r *registryResolution) loop(ctx context.Context, refresh time.Duration) {
	defer r.wg.Done()
	t := time.NewTicker(refresh)
	defer t.Stop()
	for {
		r.resolve(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.now:
		}
	}
}

func (r *registryResolution) resolve(ctx context.Context) {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := r.api.ListComponents(lctx, &coordinatorv1.ListComponentsRequest{Name: r.name})
	if err != nil {
		if ctx.Err() == nil {
			r.cc.ReportError(err)
		}
		return
	}
	ep := resp.GetComponents()[0].GetEndpoint()
	if ep == "" || ep == r.last {
		return
	}
	r.last = ep
	// With mTLS the service's certificate names its host, not the component.
	host, _, err := net.SplitHostPort(ep)
	if err != nil {
		host = ep
	}
	_ = r.cc.UpdateState(resolver.State{Addresses: []resolver.Address{{Addr: ep, ServerName: host}}})
}

// watch re-resolves as soon as the component registers again.
func (r *registryResolution) watch(ctx context.Context) {
	defer r.wg.Done()
	for ctx.Err() == nil {
		stream, err := r.api.Watch(ctx, &coordinatorv1.WatchRequest{Component: r.name,
			Types: []coordinatorv1.EventType{coordinatorv1.EventType_EVENT_TYPE_COMPONENT_REGISTERED}})
		if err == nil {
			for {
				if _, err := stream.Recv(); err != nil {
					break
				}
				r.ResolveNow(resolver.ResolveNowOptions{})
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
