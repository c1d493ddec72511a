// Package embedetcd runs a single-member etcd inside the coordinator
// process: the default for one machine, so `tradsys up` needs no etcd
// install. Point the coordinator at a real cluster with --etcd-endpoints.
package embedetcd

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

// Config says where the member keeps its data and listens.
type Config struct {
	Dir        string
	ClientAddr string // host:port; port 0 picks a free one
	PeerAddr   string // host:port; port 0 picks a free one
	// NoFsync trades durability for speed; only for throwaway test data.
	NoFsync bool
	// LogLevel of etcd's own log; default "error".
	LogLevel string
	// MaxTxnOps and MaxRequestBytes are etcd's limits of one request;
	// zero keeps etcd's defaults (128, 1.5 MiB).
	MaxTxnOps, MaxRequestBytes int
}

// Server is a running embedded etcd member.
type Server struct {
	etcd     *embed.Etcd
	endpoint string
}

// Start starts the member and waits until it serves. A free port (port
// 0) is found by listening and closing, so another process can take it
// before etcd binds it: that attempt fails with "address already in use"
// and Start tries again with fresh ports (tests on a busy machine hit it).
func Start(c Config) (*Server, error) {
	free := strings.HasSuffix(c.ClientAddr, ":0") || strings.HasSuffix(c.PeerAddr, ":0")
	for attempt := 1; ; attempt++ {
		s, err := start(c)
		if err == nil || !free || attempt == 5 || !isAddrInUse(err) {
			return s, err
		}
	}
}

func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}

func start(c Config) (*Server, error) {
	client, err := freeURL(c.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("etcd client address %q: %w", c.ClientAddr, err)
	}
	peer, err := freeURL(c.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("etcd peer address %q: %w", c.PeerAddr, err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "tradsys"
	cfg.Dir = c.Dir
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*client}, []url.URL{*client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*peer}, []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	if c.LogLevel == "" {
		c.LogLevel = "error"
	}
	cfg.Logger, cfg.LogLevel = "zap", c.LogLevel
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = embed.CompactorModePeriodic, "1h"
	cfg.UnsafeNoFsync = c.NoFsync
	if c.MaxTxnOps > 0 {
		cfg.MaxTxnOps = uint(c.MaxTxnOps)
	}
	if c.MaxRequestBytes > 0 {
		cfg.MaxRequestBytes = uint(c.MaxRequestBytes)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", c.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s not ready after 60s", c.Dir)
	}
	return &Server{etcd: e, endpoint: client.Host}, nil
}

// Endpoint is the member's client address (host:port).
func (s *Server) Endpoint() string { return s.endpoint }

// InProcessClient is an etcd client that calls the member's API as
// functions (etcd's v3client): no socket, no gRPC framing, no
// marshalling of requests and answers. It is what the coordinator uses for
// its own embedded etcd; other processes reach the member at Endpoint.
// Close the client before the member.
func (s *Server) InProcessClient() *clientv3.Client { return v3client.New(s.etcd.Server) }

// Close stops the member.
func (s *Server) Close() { s.etcd.Close() }

func freeURL(addr string) (*url.URL, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if port == "0" {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		addr = l.Addr().String()
		l.Close()
	}
	return url.Parse("http://" + addr)
}
