// Package server is the gateway service's wiring: the lazy component
// "gateway" (the WebSocket server), the HTTP server on --http-listen (the
// page, /ws), the backends over gRPC (matching, historical, orders, the
// coordinator) and tradsys.gateway.v1.GatewayService.
package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tradsys/mesh/pkg/lazy"
	"github.com/tradsys/mesh/pkg/service"
	gatewayv1 "github.com/tradsys/mesh/proto/tradsys/gateway/v1"
	historicalv1 "github.com/tradsys/mesh/proto/tradsys/historical/v1"
	matchingv1 "github.com/tradsys/mesh/proto/tradsys/matching/v1"
	ordersv1 "github.com/tradsys/mesh/proto/tradsys/orders/v1"
	"github.com/tradsys/mesh/services/gateway/hub"
	"github.com/tradsys/mesh/services/gateway/web"
	"go.uber.org/zap"
)

// MainComponent is the WebSocket server's component.
const MainComponent = "gateway"

// Options are the service's own settings (main.go fills them from flags).
type Options struct {
	// HTTPListen serves the page and the WebSocket endpoint /ws.
	HTTPListen string
	// APIKeys is the key file; CreateAPIKey writes one with a fresh key
	// for account 1 when it does not exist.
	APIKeys      string
	CreateAPIKey bool
	// Targets of the services behind the gateway ("host:port" or
	// "tradsys:///<component>").
	Matching, Historical, Orders string
	// Server is the component "gateway": the WebSocket server.
	Server lazy.Settings
	// Hub is the WebSocket tuning (send buffers, workers, intervals).
	Hub hub.Config
	// StreamSubmits places orders with the orders service on one shared
	// SubmitOrders stream instead of a unary SubmitOrder each.
	StreamSubmits bool
	// SocketSendBuffer is each client socket's kernel send buffer (bytes;
	// 0: the system's). Bounded, a client that stops reading is found out
	// after SendBuffer frames plus this much, not after megabytes.
	SocketSendBuffer int
}

// Defaults are the seed's values.
func Defaults() Options {
	return Options{
		HTTPListen: "127.0.0.1:8080", APIKeys: ".tradsys/gateway/api-keys", CreateAPIKey: true,
		Matching: "tradsys:///matching", Historical: "tradsys:///historical", Orders: "tradsys:///orders",
		Server: lazy.Settings{MemoryBytes: 200 << 20, Priority: 10, InitTimeout: 15 * time.Second, IdleTimeout: 5 * time.Minute},
		Hub: hub.Config{SendBuffer: 1024, WriteTimeout: 5 * time.Second, Workers: 16, Queue: 1024,
			BookInterval: 200 * time.Millisecond, CandleInterval: time.Second},
		SocketSendBuffer: 256 << 10, StreamSubmits: true,
	}
}

// RegisterFlags adds the gateway's own flags, defaulting to o's values.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.HTTPListen, "http-listen", o.HTTPListen, "address of the page and the WebSocket endpoint /ws")
	fs.StringVar(&o.APIKeys, "api-keys", o.APIKeys, "API key file: one '<secret> <account> [name=] [rate=] [burst=]' a line")
	fs.BoolVar(&o.CreateAPIKey, "create-api-key", o.CreateAPIKey, "when --api-keys does not exist, write it with a fresh key for account 1")
	fs.StringVar(&o.Matching, "matching", o.Matching, "matching service (host:port or tradsys:///matching)")
	fs.StringVar(&o.Historical, "historical", o.Historical, "historical service (host:port or tradsys:///historical)")
	fs.StringVar(&o.Orders, "orders", o.Orders, "orders service (host:port or tradsys:///orders)")
	fs.BoolVar(&o.StreamSubmits, "stream-submits", o.StreamSubmits, "place orders with the orders service on one shared SubmitOrders stream (false: a unary SubmitOrder each)")
	service.ComponentFlags(fs, "", "the WebSocket server", &o.Server)
	fs.IntVar(&o.Hub.SendBuffer, "send-buffer", o.Hub.SendBuffer, "frames queued per connection; one more closes it as a slow consumer (4001)")
	fs.DurationVar(&o.Hub.WriteTimeout, "write-timeout", o.Hub.WriteTimeout, "a client that takes longer to accept one frame is closed as slow")
	fs.IntVar(&o.SocketSendBuffer, "socket-send-buffer", o.SocketSendBuffer, "kernel send buffer of each client socket in bytes (0: the system's)")
	fs.IntVar(&o.Hub.Workers, "workers", o.Hub.Workers, "workers running calls to other services")
	fs.IntVar(&o.Hub.Queue, "queue", o.Hub.Queue, "calls waiting for a worker; beyond it clients get 'busy'")
	fs.DurationVar(&o.Hub.BookInterval, "book-interval", o.Hub.BookInterval, "how often a subscribed book is read")
	fs.DurationVar(&o.Hub.CandleInterval, "candle-interval", o.Hub.CandleInterval, "how often subscribed candles are read")
}

// Server is the running gateway.
type Server struct {
	Hub  *hub.Hub
	Main *lazy.Component
	http *http.Server
	lis  net.Listener
}

// HTTPAddr is the bound address of the page and /ws.
func (s *Server) HTTPAddr() string { return s.lis.Addr().String() }

// Setup builds the gateway on s and starts its HTTP server (stopped when
// ctx ends).
func Setup(ctx context.Context, s *service.Service, o Options) (*Server, error) {
	d := Defaults()
	if o.HTTPListen == "" {
		o.HTTPListen = d.HTTPListen
	}
	if o.Server.MemoryBytes <= 0 {
		o.Server.MemoryBytes = d.Server.MemoryBytes
	}
	keys, created, err := hub.LoadKeys(o.APIKeys, o.CreateAPIKey)
	if err != nil {
		return nil, fmt.Errorf("api keys: %w", err)
	}
	if created != "" {
		s.Log.Warn("no API key file: created one with a key for account 1", zap.String("file", o.APIKeys), zap.String("api_key", created))
	}
	s.Log.Info("api keys loaded", zap.String("file", o.APIKeys), zap.Int("keys", keys.Len()))
	mc, err := s.Pool.Conn(o.Matching)
	if err != nil {
		return nil, err
	}
	hc, err := s.Pool.Conn(o.Historical)
	if err != nil {
		return nil, err
	}
	oc, err := s.Pool.Conn(o.Orders)
	if err != nil {
		return nil, err
	}
	ordersClient := ordersv1.NewOrderServiceClient(oc)
	entry := newOrderEntry(oc, o.StreamSubmits)
	go func() { <-ctx.Done(); entry.close() }()
	md := &marketData{matching: matchingv1.NewMatchingServiceClient(mc), historical: historicalv1.NewHistoricalDataServiceClient(hc),
		grids: &grids{c: ordersClient, known: map[string]grid{}}}
	hcfg := o.Hub
	hcfg.Logger = s.Log.Named("hub")
	hcfg.Metrics = s.Server.Registry()
	h := hub.New(hcfg, keys, md, &orders{c: ordersClient, entry: entry}, &mesh{coord: s.Coord.API()})
	srv := &Server{Hub: h}
	spec := o.Server.Spec(MainComponent)
	spec.Pinned, spec.DrainTimeout = true, 5*time.Second
	spec.Init = func(context.Context) error { h.Start(); return nil }
	spec.Shutdown = func(ctx context.Context) error { h.Stop(ctx); return nil }
	srv.Main, err = s.Runtime.Add(spec)
	if err != nil {
		return nil, err
	}
	gatewayv1.RegisterGatewayServiceServer(s.Server.GRPC(), &gatewayService{keys: keys, orders: ordersClient, entry: entry, md: md})
	for _, method := range []string{gatewayv1.GatewayService_SubmitOrder_FullMethodName, gatewayv1.GatewayService_ReplaceOrder_FullMethodName,
		gatewayv1.GatewayService_CancelOrder_FullMethodName, gatewayv1.GatewayService_StreamOrderUpdates_FullMethodName,
		gatewayv1.GatewayService_StreamTrades_FullMethodName, gatewayv1.GatewayService_GetOrderBook_FullMethodName,
		gatewayv1.GatewayService_GetCandles_FullMethodName} {
		s.Gate.Require(method, srv.Main)
	}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServerFS(web.FS))
	// A connection holds the component for its whole life: the gateway
	// unloads only when no client is connected (or when preempted or
	// stopped, which closes the connections with 1001).
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if keys.Lookup(hub.SecretFromRequest(r)) == nil {
			h.ServeHTTP(w, r) // refuses with 401; no activation for strangers
			return
		}
		exit, err := srv.Main.Enter(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		defer exit()
		h.ServeHTTP(w, r)
	})
	lis, err := net.Listen("tcp", o.HTTPListen)
	if err != nil {
		return nil, fmt.Errorf("--http-listen: %w", err)
	}
	srv.lis = &sendBufferListener{Listener: lis, size: o.SocketSendBuffer}
	srv.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.http.Serve(srv.lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Log.Error("http server", zap.Error(err))
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Stop(sctx)
		_ = srv.http.Shutdown(sctx)
	}()
	s.Log.Info("http serving", zap.String("http", srv.HTTPAddr()))
	return srv, nil
}

// sendBufferListener sets each accepted socket's kernel send buffer.
type sendBufferListener struct {
	net.Listener
	size int
}

func (l *sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok && l.size > 0 {
		_ = tc.SetWriteBuffer(l.size)
	}
	return c, err
}
