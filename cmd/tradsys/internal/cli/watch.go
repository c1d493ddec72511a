package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tradsys/mesh/pkg/config"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// parseEventType accepts MEMORY_GRANTED, memory_granted, memory-granted or
// EVENT_TYPE_MEMORY_GRANTED.
func parseEventType(s string) (coordinatorv1.EventType, error) {
	n := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	if !strings.HasPrefix(n, "EVENT_TYPE_") {
		n = "EVENT_TYPE_" + n
	}
	if v, ok := coordinatorv1.EventType_value[n]; ok && v != 0 {
		return coordinatorv1.EventType(v), nil
	}
	var names []string
	for v, name := range coordinatorv1.EventType_name {
		if v != 0 {
			names = append(names, strings.TrimPrefix(name, "EVENT_TYPE_"))
		}
	}
	sort.Strings(names)
	return 0, usagef("watch: unknown event type %q; types: %s", s, strings.Join(names, ", "))
}

func runWatch(ctx context.Context, e *env, args []string) error {
	fs := e.flags("watch", "[--type T ...] [--session S] [--component C]")
	var types config.StringList
	fs.Var(&types, "type", "only events of this type, e.g. MEMORY_GRANTED (repeatable or comma-separated)")
	session := fs.String("session", "", "only events of this session")
	component := fs.String("component", "", "only events of this component")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	req := &coordinatorv1.WatchRequest{SessionId: *session, Component: *component}
	for _, t := range types {
		et, err := parseEventType(t)
		if err != nil {
			return err
		}
		req.Types = append(req.Types, et)
	}
	client, closeConn, err := e.dial()
	if err != nil {
		return err
	}
	defer closeConn()

	// The stream runs until Ctrl-C (ctx). When it breaks after having
	// worked (leader change, a lagging watcher cut off, the coordinator
	// restarting) we re-watch, saying so on stderr; a stream that never
	// worked is an error.
	worked := false
	for attempt := 0; ; attempt++ {
		got, err := watchOnce(ctx, e, client, req)
		worked = worked || got
		if ctx.Err() != nil {
			return nil // Ctrl-C: a normal end
		}
		if !worked || !retryable(err) {
			if err == nil || errors.Is(err, io.EOF) {
				return errors.New("the coordinator ended the watch")
			}
			return rpcError{addr: e.g.client.Coordinator, err: err}
		}
		fmt.Fprintf(e.stderr, "tradsys: watch interrupted (%s); re-watching\n", describe(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff(attempt)):
		}
	}
}

// watchOnce streams until the stream ends; got reports whether any event or
// header arrived, i.e. the watch was established.
func watchOnce(ctx context.Context, e *env, client coordinatorv1.CoordinatorServiceClient, req *coordinatorv1.WatchRequest) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Watch(ctx, req)
	if err != nil {
		return false, err
	}
	if _, err := stream.Header(); err != nil {
		return false, err
	}
	got = true
	for {
		resp, err := stream.Recv()
		if err != nil {
			return got, err
		}
		if err := printEvent(e, resp); err != nil {
			return got, err
		}
	}
}

func retryable(err error) bool {
	if err == nil || errors.Is(err, io.EOF) {
		return true
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

func backoff(attempt int) time.Duration {
	d := 200 * time.Millisecond << min(attempt, 4)
	return min(d, 3*time.Second)
}

func printEvent(e *env, resp *coordinatorv1.WatchResponse) error {
	if e.json() {
		return printJSONLine(e.stdout, resp)
	}
	_, err := fmt.Fprintln(e.stdout, eventLine(resp.GetEvent()))
	return err
}

// eventLine is one event on one line: time, sequence, type, then the
// fields that are set, as key=value.
func eventLine(ev *coordinatorv1.Event) string {
	var b strings.Builder
	ts := "-"
	if ev.GetTime() != nil {
		ts = ev.GetTime().AsTime().Local().Format("2006-01-02T15:04:05.000Z07:00")
	}
	fmt.Fprintf(&b, "%s #%d %s", ts, ev.GetSequence(), eventName(ev.GetType()))
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, quoteIfNeeded(v))
		}
	}
	kv("session", ev.GetSessionId())
	kv("owner", ev.GetOwner())
	kv("component", ev.GetComponent())
	kv("lease", ev.GetLeaseId())
	kv("lock", ev.GetLockName())
	if ev.GetBytes() != 0 {
		kv("bytes", bytesStr(ev.GetBytes()))
	}
	if ev.GetPriority() != 0 {
		kv("priority", fmt.Sprint(ev.GetPriority()))
	}
	if ev.GetFencingToken() != 0 {
		kv("token", fmt.Sprint(ev.GetFencingToken()))
	}
	kv("state", stateName(ev.GetState()))
	if ev.GetDeadline() != nil {
		kv("deadline", ev.GetDeadline().AsTime().Local().Format("15:04:05.000"))
	}
	kv("message", ev.GetMessage())
	return b.String()
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return fmt.Sprintf("%q", s)
	}
	return s
}
