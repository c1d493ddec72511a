// Package coordclient is how services talk to the coordinator: one shared
// connection (with failover across replicas), a session kept alive in the
// background and re-opened when lost, memory and lock leases tied to it, and
// the preemption notices addressed to it.
package coordclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ErrSessionLost means the session ended (expired or closed): everything it
// held is gone.
var ErrSessionLost = errors.New("coordinator session lost")

// Options configure a Client.
type Options struct {
	// Addresses of coordinator replicas; any replica forwards to the leader.
	Addresses []string
	Owner     string
	TTL       time.Duration // session TTL; default 10s
	Creds     credentials.TransportCredentials
	Logger    *zap.Logger
	// OnSessionLost is called (once per session) when the session ended.
	OnSessionLost func(sessionID string)
	// OnPreempt is called when a lease of this session gets a revocation
	// notice: the holder should release before the deadline.
	OnPreempt func(leaseID string, deadline time.Time)
	// SessionStream sends acquires and releases (memory and locks) as
	// messages on one CoordinatorService.Session stream instead of one
	// call each: cheaper per request for a client that makes many. The
	// answers, errors and retries are the unary calls'. Keep-alives stay
	// unary: any replica renews a session without a leader, while the
	// stream is relayed to the leader and breaks while leadership moves.
	// A stream answering UNAVAILABLE is dropped and the retry opens a new
	// one; a request whose ctx ends is cancelled on the coordinator.
	SessionStream bool
}

// Target is how to dial a set of coordinator replicas: a manual resolver
// with every address and pick_first, so calls go to the first reachable
// replica and move on when it goes away (any replica forwards to the
// leader). Each replica's certificate is verified against its own host.
func Target(addresses []string) (string, grpc.DialOption) {
	r := manual.NewBuilderWithScheme("tradsys-coordinator")
	var addrs []resolver.Address
	for _, a := range addresses {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		addrs = append(addrs, resolver.Address{Addr: a, ServerName: host})
	}
	r.InitialState(resolver.State{Addresses: addrs})
	return r.Scheme() + ":///coordinator", grpc.WithResolvers(r)
}

// Client is a coordinator client with a managed session.
type Client struct {
	opts Options
	conn *grpc.ClientConn
	api  coordinatorv1.CoordinatorServiceClient
	log  *zap.Logger

	ss *sessionStream // nil unless Options.SessionStream

	mu      sync.Mutex
	session string
	cancel  context.CancelFunc // ends the session's keep-alive and watch
}

// Dial returns a client; it connects lazily, so a coordinator that is not
// up yet is not an error here.
func Dial(o Options) (*Client, error) {
	if len(o.Addresses) == 0 {
		return nil, errors.New("no coordinator address")
	}
	if o.TTL <= 0 {
		o.TTL = 10 * time.Second
	}
	if o.Creds == nil {
		o.Creds = insecure.NewCredentials()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	target, replicas := Target(o.Addresses)
	conn, err := grpc.NewClient(target, replicas, grpc.WithTransportCredentials(o.Creds),
		// Reconnect within a second of a coordinator coming back: a session
		// only survives an outage shorter than its TTL, so the default
		// backoff (up to two minutes) would lose it.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("coordinator %v: %w", o.Addresses, err)
	}
	// The owner names this process instance: the registry tells a process
	// that re-opened its session from a restarted one at the same endpoint.
	o.Owner += "#" + instanceID()
	c := &Client{opts: o, conn: conn, api: coordinatorv1.NewCoordinatorServiceClient(conn), log: o.Logger}
	if o.SessionStream {
		c.ss = &sessionStream{api: c.api, onStray: c.giveBack}
	}
	return c, nil
}

// giveBack releases what a Session stream granted after its caller
// stopped waiting (the unary call's server does this itself when the
// call is cancelled; a stream's request is not cancelled with its caller).
func (c *Client) giveBack(resp *coordinatorv1.SessionResponse, req *coordinatorv1.SessionRequest) {
	if resp.GetCode() != 0 {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		switch {
		case resp.GetAcquireMemory() != nil:
			_, _ = c.api.ReleaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: req.GetAcquireMemory().GetSessionId(),
				LeaseId: resp.GetAcquireMemory().GetLeaseId()})
		case resp.GetAcquireLock() != nil:
			_, _ = c.api.ReleaseLock(ctx, &coordinatorv1.ReleaseLockRequest{SessionId: req.GetAcquireLock().GetSessionId(),
				Name: req.GetAcquireLock().GetName()})
		}
	}()
}

// The four calls a Session stream can carry, by stream or by call.

func (c *Client) acquireMemory(ctx context.Context, r *coordinatorv1.AcquireMemoryRequest) (*coordinatorv1.AcquireMemoryResponse, error) {
	if c.ss == nil {
		return c.api.AcquireMemory(ctx, r)
	}
	resp, err := c.ss.call(ctx, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_AcquireMemory{AcquireMemory: r}})
	return resp.GetAcquireMemory(), err
}

func (c *Client) releaseMemory(ctx context.Context, r *coordinatorv1.ReleaseMemoryRequest) error {
	if c.ss == nil {
		_, err := c.api.ReleaseMemory(ctx, r)
		return err
	}
	_, err := c.ss.call(ctx, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_ReleaseMemory{ReleaseMemory: r}})
	return err
}

func (c *Client) acquireLock(ctx context.Context, r *coordinatorv1.AcquireLockRequest) (*coordinatorv1.AcquireLockResponse, error) {
	if c.ss == nil {
		return c.api.AcquireLock(ctx, r)
	}
	resp, err := c.ss.call(ctx, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_AcquireLock{AcquireLock: r}})
	return resp.GetAcquireLock(), err
}

func (c *Client) releaseLock(ctx context.Context, r *coordinatorv1.ReleaseLockRequest) error {
	if c.ss == nil {
		_, err := c.api.ReleaseLock(ctx, r)
		return err
	}
	_, err := c.ss.call(ctx, &coordinatorv1.SessionRequest{Request: &coordinatorv1.SessionRequest_ReleaseLock{ReleaseLock: r}})
	return err
}

func instanceID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Owner is the owner this client's sessions carry: Options.Owner and
// "#<instance>", unique to the process.
func (c *Client) Owner() string { return c.opts.Owner }

// API is the raw coordinator API on the shared connection.
func (c *Client) API() coordinatorv1.CoordinatorServiceClient { return c.api }

// Close ends the session (releasing all it holds) and the connection.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	sid, cancel := c.session, c.cancel
	c.session, c.cancel = "", nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if sid != "" {
		_, _ = c.api.CloseSession(ctx, &coordinatorv1.CloseSessionRequest{SessionId: sid})
	}
	if c.ss != nil {
		c.ss.close()
	}
	return c.conn.Close()
}

// Unavailable wraps errors reaching the coordinator so callers can name it.
type Unavailable struct{ Err error }

func (e *Unavailable) Error() string { return "coordinator unavailable: " + e.Err.Error() }
func (e *Unavailable) Unwrap() error { return e.Err }

// Refusal is the coordinator's answer refusing a request (RESOURCE_EXHAUSTED
// with the numbers, ABORTED naming a deadlock, ...): its message as the
// coordinator wrote it, and its status (code and details) for whoever passes
// it on.
type Refusal struct{ Status *status.Status }

func (e *Refusal) Error() string              { return e.Status.Message() }
func (e *Refusal) GRPCStatus() *status.Status { return e.Status }

func wrap(err error) error {
	st, ok := status.FromError(err)
	switch {
	case !ok || err == nil:
		return err
	case st.Code() == codes.Unavailable, st.Code() == codes.DeadlineExceeded:
		return &Unavailable{Err: err}
	}
	return &Refusal{Status: st}
}

// Session returns the current session, opening one if there is none.
func (c *Client) Session(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session != "" {
		return c.session, nil
	}
	resp, err := c.api.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: c.opts.Owner, Ttl: durationpb.New(c.opts.TTL)})
	if err != nil {
		return "", wrap(err)
	}
	sid := resp.GetSessionId()
	ttl := resp.GetTtl().AsDuration()
	sctx, cancel := context.WithCancel(context.Background())
	c.session, c.cancel = sid, cancel
	go c.keepAlive(sctx, sid, ttl)
	if c.opts.OnPreempt != nil {
		go c.watchPreemptions(sctx, sid)
	}
	c.log.Info("coordinator session opened", zap.String("session", publicID(sid)), zap.Duration("ttl", ttl))
	return sid, nil
}

// CurrentSession is the open session or "".
func (c *Client) CurrentSession() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

// keepAlive renews the session every TTL/3. It declares the session lost
// when the coordinator says it ended, or when no renewal succeeded for a
// whole TTL (then etcd has expired it, whatever the coordinator can say).
func (c *Client) keepAlive(ctx context.Context, sid string, ttl time.Duration) {
	t := time.NewTicker(max(ttl/3, 100*time.Millisecond))
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		kctx, cancel := context.WithTimeout(ctx, ttl/3)
		_, err := c.api.KeepAlive(kctx, &coordinatorv1.KeepAliveRequest{SessionId: sid})
		cancel()
		switch {
		case err == nil:
			lastOK = time.Now()
			continue
		case status.Code(err) == codes.NotFound:
		case time.Since(lastOK) < ttl:
			c.log.Warn("session keep-alive failed; the session lives until its TTL", zap.String("session", publicID(sid)), zap.Error(err))
			continue
		}
		if ctx.Err() != nil {
			return
		}
		c.lost(sid, err)
		return
	}
}

func (c *Client) lost(sid string, cause error) {
	c.mu.Lock()
	if c.session != sid {
		c.mu.Unlock()
		return
	}
	c.session = ""
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	c.mu.Unlock()
	c.log.Warn("coordinator session lost", zap.String("session", publicID(sid)), zap.Error(cause))
	if c.opts.OnSessionLost != nil {
		c.opts.OnSessionLost(sid)
	}
}

func (c *Client) watchPreemptions(ctx context.Context, sid string) {
	for ctx.Err() == nil {
		stream, err := c.api.Watch(ctx, &coordinatorv1.WatchRequest{SessionId: sid,
			Types: []coordinatorv1.EventType{coordinatorv1.EventType_EVENT_TYPE_MEMORY_PREEMPTING}})
		if err == nil {
			for {
				ev, err := stream.Recv()
				if err != nil {
					break
				}
				e := ev.GetEvent()
				c.opts.OnPreempt(e.GetLeaseId(), e.GetDeadline().AsTime())
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// WaitWithin is the wait_timeout to send with a call bounded by ctx: short
// enough that the coordinator's answer (a refusal with its cause: requested,
// free, budget, holders) arrives before the call's own deadline, instead of
// the deadline racing the wait and the caller seeing a bare
// DeadlineExceeded. The margin is a tenth of what is left, 50ms..1s.
func WaitWithin(ctx context.Context, wait time.Duration) time.Duration {
	deadline, ok := ctx.Deadline()
	if !ok {
		return wait
	}
	left := time.Until(deadline)
	margin := min(max(left/10, 50*time.Millisecond), time.Second)
	return max(min(wait, left-margin), 0)
}

// MemoryLease is a granted memory lease.
type MemoryLease struct {
	ID           string
	FencingToken uint64
	Bytes        int64
	Session      string
	// RevokeAt is set (by ResizeMemory) while a revocation notice is
	// outstanding: the force-release time.
	RevokeAt time.Time
	// Over is set with RevokeAt for a lowered budget: the bytes a shrink
	// must give back to keep the lease; -1 when unknown or no shrink keeps it.
	Over int64
}

// retryable is an answer that leaves the outcome open (the coordinator
// could not decide or reply: no leader, an attempt in progress, the link
// gone): the same request, with the same id, may be sent again.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable:
		return true
	case codes.DeadlineExceeded, codes.Canceled:
		// The call's own deadline, not a coordinator's answer such as
		// LOCK_WAIT_TIMEOUT (which carries a reason).
		return reason(err) == ""
	}
	return false
}

// reason is the ErrorInfo reason of a coordinator error, or "".
func reason(err error) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// retryPause is the pause between attempts: short, since a failover takes
// about the election TTL and an attempt in progress settles in an etcd write.
func retryPause(ctx context.Context, attempt int) {
	select {
	case <-ctx.Done():
	case <-time.After(min(time.Duration(attempt+1)*50*time.Millisecond, 500*time.Millisecond)):
	}
}

// newRequestID is a request's idempotency key within a session.
func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// AcquireMemory asks for bytes for component, waiting up to wait. The
// request carries an id; while the outcome is open (no leader, the answer
// lost) it is sent again with the same id until ctx ends, so a grant whose
// answer was lost is returned rather than leaked. If ctx ends with the
// outcome still open, the session's leases are searched for the id and a
// lease found is released: nothing is left held by nobody.
func (c *Client) AcquireMemory(ctx context.Context, component string, bytes int64, priority int32, preemptible bool, wait time.Duration) (MemoryLease, error) {
	sid, err := c.Session(ctx)
	if err != nil {
		return MemoryLease{}, err
	}
	id := newRequestID()
	waitUntil := time.Now().Add(wait)
	for attempt := 0; ; attempt++ {
		resp, err := c.acquireMemory(ctx, &coordinatorv1.AcquireMemoryRequest{SessionId: sid, Component: component, Bytes: bytes,
			Priority: &priority, Preemptible: preemptible, WaitTimeout: durationpb.New(WaitWithin(ctx, max(time.Until(waitUntil), 0))),
			RequestId: id})
		switch {
		case err == nil:
			return MemoryLease{ID: resp.GetLeaseId(), FencingToken: resp.GetFencingToken(), Bytes: resp.GetBytes(), Session: sid}, nil
		case status.Code(err) == codes.NotFound:
			c.lost(sid, err)
			return MemoryLease{}, ErrSessionLost
		case !retryable(err):
			return MemoryLease{}, wrap(err)
		case ctx.Err() != nil:
			c.reconcileMemory(ctx, sid, id)
			return MemoryLease{}, wrap(err)
		}
		retryPause(ctx, attempt)
	}
}

// reconcileMemory releases the lease granted for request id, if one was
// granted after all: the caller was told it failed.
func (c *Client) reconcileMemory(ctx context.Context, sid, id string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for attempt := 0; rctx.Err() == nil; attempt++ {
		list, err := c.api.ListLeases(rctx, &coordinatorv1.ListLeasesRequest{SessionId: sid})
		if err == nil {
			for _, l := range list.GetLeases() {
				if l.GetRequestId() == id {
					_ = c.ReleaseMemory(rctx, MemoryLease{ID: l.GetLeaseId(), Session: sid})
				}
			}
			return
		}
		if !retryable(err) {
			return
		}
		retryPause(rctx, attempt)
	}
	c.log.Warn("could not reconcile a memory request whose outcome is unknown; its lease, if any, lives until released or the session ends",
		zap.String("session", publicID(sid)), zap.String("request_id", id))
}

// ReleaseMemory gives a lease back; a lease whose session already ended is
// already released. An open outcome is retried until ctx ends.
func (c *Client) ReleaseMemory(ctx context.Context, l MemoryLease) error {
	for attempt := 0; ; attempt++ {
		err := c.releaseMemory(ctx, &coordinatorv1.ReleaseMemoryRequest{SessionId: l.Session, LeaseId: l.ID})
		if status.Code(err) == codes.NotFound || err == nil {
			return nil // gone: released now, by an earlier attempt, or with its session
		}
		if !retryable(err) || ctx.Err() != nil {
			return wrap(err)
		}
		retryPause(ctx, attempt)
	}
}

// ResizeMemory changes a lease's size (growth waits up to wait) and tells
// the coordinator what the holder uses (used < 0: not known). A resize is
// idempotent, so an open outcome is retried until ctx ends.
func (c *Client) ResizeMemory(ctx context.Context, l MemoryLease, bytes, used int64, wait time.Duration) (MemoryLease, error) {
	req := &coordinatorv1.ResizeMemoryRequest{SessionId: l.Session, LeaseId: l.ID, Bytes: bytes}
	if used >= 0 {
		req.UsedBytes = &used
	}
	waitUntil := time.Now().Add(wait)
	for attempt := 0; ; attempt++ {
		req.WaitTimeout = durationpb.New(WaitWithin(ctx, max(time.Until(waitUntil), 0)))
		resp, err := c.api.ResizeMemory(ctx, req)
		switch {
		case err == nil:
			l.Bytes, l.FencingToken, l.RevokeAt, l.Over = resp.GetBytes(), resp.GetFencingToken(), time.Time{}, -1
			if resp.RevokeAt != nil {
				l.RevokeAt = resp.GetRevokeAt().AsTime()
			}
			if resp.OverBytes != nil {
				l.Over = resp.GetOverBytes()
			}
			return l, nil
		case !retryable(err) || ctx.Err() != nil:
			return l, wrap(err)
		}
		retryPause(ctx, attempt)
	}
}

// AcquireLock takes a named lock and returns its fencing token. Acquiring
// a lock the session holds is idempotent, so an open outcome is retried
// until ctx ends; if it ends still open, the lock is released in case it
// was granted: the caller was told it failed.
func (c *Client) AcquireLock(ctx context.Context, name string, wait time.Duration) (uint64, error) {
	sid, err := c.Session(ctx)
	if err != nil {
		return 0, err
	}
	id := newRequestID()
	waitUntil := time.Now().Add(wait)
	for attempt := 0; ; attempt++ {
		resp, err := c.acquireLock(ctx, &coordinatorv1.AcquireLockRequest{SessionId: sid, Name: name,
			WaitTimeout: durationpb.New(WaitWithin(ctx, max(time.Until(waitUntil), 0))), RequestId: id})
		switch {
		case err == nil:
			return resp.GetFencingToken(), nil
		case !retryable(err):
			return 0, wrap(err)
		case ctx.Err() != nil:
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = c.ReleaseLock(rctx, name)
			cancel()
			return 0, wrap(err)
		}
		retryPause(ctx, attempt)
	}
}

// ReleaseLock releases a lock held by this client's session. An open
// outcome is retried until ctx ends; a retry told the lock is not held
// means an earlier attempt released it.
func (c *Client) ReleaseLock(ctx context.Context, name string) error {
	sid := c.CurrentSession()
	if sid == "" {
		return ErrSessionLost
	}
	for attempt := 0; ; attempt++ {
		err := c.releaseLock(ctx, &coordinatorv1.ReleaseLockRequest{SessionId: sid, Name: name})
		switch {
		case err == nil:
			return nil
		case attempt > 0 && reason(err) == "LOCK_NOT_HELD":
			return nil
		case !retryable(err) || ctx.Err() != nil:
			return wrap(err)
		}
		retryPause(ctx, attempt)
	}
}

// publicID is the public part of a session id ("<public>.<secret>"): logs
// name the session without the secret that lets a holder act for it.
func publicID(sid string) string {
	public, _, _ := strings.Cut(sid, ".")
	return public
}
