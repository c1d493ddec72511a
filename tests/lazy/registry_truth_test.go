package lazy_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
)

// componentEvents collects the coordinator's component events from one
// Watch, as `tradsys watch` would print them.
type componentEvents struct {
	mu  sync.Mutex
	evs []*coordinatorv1.Event
}

func watchComponents(t *testing.T, c coordinatorv1.CoordinatorServiceClient) *componentEvents {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := c.Watch(ctx, &coordinatorv1.WatchRequest{Types: []coordinatorv1.EventType{
		coordinatorv1.EventType_EVENT_TYPE_COMPONENT_STATE_CHANGED, coordinatorv1.EventType_EVENT_TYPE_COMPONENT_REMOVED,
		coordinatorv1.EventType_EVENT_TYPE_COMPONENT_REGISTERED}})
	if err != nil {
		t.Fatal(err)
	}
	w := &componentEvents{}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			w.mu.Lock()
			w.evs = append(w.evs, resp.GetEvent())
			w.mu.Unlock()
		}
	}()
	return w
}

// states is the sequence of COMPONENT_STATE_CHANGED states of name so far.
func (w *componentEvents) states(name string) []coordinatorv1.ComponentState {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []coordinatorv1.ComponentState
	for _, e := range w.evs {
		if e.GetComponent() == name && e.GetType() == coordinatorv1.EventType_EVENT_TYPE_COMPONENT_STATE_CHANGED {
			out = append(out, e.GetState())
		}
	}
	return out
}

func (w *componentEvents) find(typ coordinatorv1.EventType, name string) *coordinatorv1.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.evs {
		if e.GetType() == typ && e.GetComponent() == name {
			return e
		}
	}
	return nil
}

func row(t *testing.T, c coordinatorv1.CoordinatorServiceClient, name string) *coordinatorv1.Component {
	t.Helper()
	resp, err := c.ListComponents(context.Background(), &coordinatorv1.ListComponentsRequest{Name: name})
	if err != nil {
		t.Fatalf("ListComponents %s: %v", name, err)
	}
	return resp.GetComponents()[0]
}

// noRepeats fails when two consecutive events report the same state: every
// state change is one event.
func noRepeats(t *testing.T, what string, states []coordinatorv1.ComponentState) {
	t.Helper()
	for i := 1; i < len(states); i++ {
		if states[i] == states[i-1] {
			t.Errorf("%s: state %s reported twice in a row on Watch: %v", what, states[i], states)
		}
	}
}

// The registry, Watch and the service's own LifecycleService tell the same
// story through each case of issue 10: waking on a call, an operator's
// activate and deactivate, a crash (the owning session expires), and a
// restart at the same endpoint that no longer has a plugin the previous run
// registered. Real service processes, a real coordinator.
func TestRegistryWatchAndLifecycleAgree(t *testing.T) {
	r, c := coordtest.Start(t, coordtest.Config{})
	ctx := context.Background()
	w := watchComponents(t, c)
	const name = "truth"
	// The process also has a plugin (as connectors registers
	// connectors/exchange/<name> on Connect): owned by the same session.
	const plugin = name + "/exchange/old"
	p1 := startService(t, r.Addr(), "--component", name, "--idle-timeout", "1h", "--plugin", plugin)

	// Registered by the process's session, DORMANT, nothing desired.
	eventually(t, 5*time.Second, "registered", func() bool {
		resp, err := c.ListComponents(ctx, &coordinatorv1.ListComponentsRequest{Name: name})
		return err == nil && resp.GetComponents()[0].GetSessionId() != ""
	})
	reg := row(t, c, name)
	if reg.GetState() != dormant || reg.GetDesiredState() != coordinatorv1.ComponentState_COMPONENT_STATE_UNSPECIFIED ||
		!strings.HasPrefix(reg.GetOwner(), "lazytest@"+p1.Addr+"#") || reg.GetEndpoint() != p1.Addr {
		t.Fatalf("registered row %v", reg)
	}
	session1 := reg.GetSessionId()

	// Waking on a call: ACTIVE everywhere, one event per change.
	if _, err := p1.call(ctx, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "registry ACTIVE after the call", func() bool { return row(t, c, name).GetState() == active })
	if s := p1.state(t, name).GetState(); s != active {
		t.Fatalf("lifecycle %s, registry ACTIVE", s)
	}

	// Operator deactivate: answered DORMANT, and the registry says so at
	// once; the request, done, is not left in DESIRED.
	resp, err := c.DeactivateComponent(ctx, &coordinatorv1.DeactivateComponentRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetComponent(); got.GetState() != dormant || got.GetDesiredState() != coordinatorv1.ComponentState_COMPONENT_STATE_UNSPECIFIED {
		t.Errorf("deactivate answered %s desired %s", got.GetState(), got.GetDesiredState())
	}
	if got := row(t, c, name); got.GetState() != dormant || got.GetDesiredState() != coordinatorv1.ComponentState_COMPONENT_STATE_UNSPECIFIED {
		t.Errorf("right after deactivate the registry reads %s desired %s", got.GetState(), got.GetDesiredState())
	}
	if s := p1.state(t, name).GetState(); s != dormant {
		t.Errorf("lifecycle %s after deactivate", s)
	}

	// Waking on a call after the operator's deactivate: DESIRED does not
	// keep saying DORMANT.
	if _, err := p1.call(ctx, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "ACTIVE again", func() bool { return row(t, c, name).GetState() == active })
	if got := row(t, c, name); got.GetDesiredState() != coordinatorv1.ComponentState_COMPONENT_STATE_UNSPECIFIED {
		t.Errorf("woken by a call, DESIRED reads %s", got.GetDesiredState())
	}

	// Operator activate: right after the answer, the registry reads ACTIVE.
	if _, err := c.DeactivateComponent(ctx, &coordinatorv1.DeactivateComponentRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	aresp, err := c.ActivateComponent(ctx, &coordinatorv1.ActivateComponentRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if got := row(t, c, name); aresp.GetComponent().GetState() != active || got.GetState() != active ||
		got.GetDesiredState() != coordinatorv1.ComponentState_COMPONENT_STATE_UNSPECIFIED {
		t.Errorf("activate answered %s; the registry right after reads %s desired %s",
			aresp.GetComponent().GetState(), got.GetState(), got.GetDesiredState())
	}
	if s := p1.state(t, name).GetState(); s != active {
		t.Errorf("lifecycle %s after activate", s)
	}
	// Activating what is already ACTIVE leaves nothing desired either.
	if _, err := c.ActivateComponent(ctx, &coordinatorv1.ActivateComponentRequest{Name: name}); err != nil {
		t.Fatal(err)
	}
	if got := row(t, c, name); got.GetDesiredState() != coordinatorv1.ComponentState_COMPONENT_STATE_UNSPECIFIED {
		t.Errorf("activate of an ACTIVE component left DESIRED %s", got.GetDesiredState())
	}

	// Every change so far was one event: DORMANT->ACTIVATING->ACTIVE, three
	// operator round trips, no repeats.
	time.Sleep(200 * time.Millisecond) // let the last events arrive
	states := w.states(name)
	noRepeats(t, "before the crash", states)
	t.Logf("state events before the crash: %s", statesString(states))
	if got := len(states); got < 6 {
		t.Errorf("%d state events for 3 activations and 2 deactivations: %s", got, statesString(states))
	}

	eventually(t, 10*time.Second, "the plugin registered by the same session", func() bool {
		resp, err := c.ListComponents(ctx, &coordinatorv1.ListComponentsRequest{Name: plugin})
		return err == nil && len(resp.GetComponents()) == 1 && resp.GetComponents()[0].GetSessionId() == session1
	})
	if _, err := c.ActivateComponent(ctx, &coordinatorv1.ActivateComponentRequest{Name: plugin}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the plugin ACTIVE", func() bool { return row(t, c, plugin).GetState() == active })
	// The coordinator reached the process (two deactivates, two activates
	// of the component, one of the plugin) through the mesh's client pool:
	// one shared connection to the endpoint.
	if n := counter(t, r.Server.Registry(), "tradsys_clientpool_connections_created_total"); n != 1 {
		t.Errorf("the coordinator made %v client connections to the process's endpoint, want 1 from pkg/clientpool", n)
	}

	// A crash: the session expires (3s TTL), and the rows it owned read
	// DORMANT with the time and the cause, one event each.
	before := len(w.states(name))
	killed := time.Now()
	p1.Kill(t)
	eventually(t, 15*time.Second, "DORMANT after the owner's session expired", func() bool { return row(t, c, name).GetState() == dormant })
	got := row(t, c, name)
	if !strings.Contains(got.GetCause(), "owner session "+session1) || !strings.Contains(got.GetCause(), "expired") ||
		got.GetStateChangedAt().AsTime().Before(killed) {
		t.Errorf("after the crash: cause %q at %v (killed at %v)", got.GetCause(), got.GetStateChangedAt().AsTime(), killed)
	}
	if got := row(t, c, plugin); got.GetState() != dormant || !strings.Contains(got.GetCause(), "expired") {
		t.Errorf("plugin after the crash: %s %q", got.GetState(), got.GetCause())
	}
	if after := w.states(name)[before:]; len(after) != 1 || after[0] != dormant {
		t.Errorf("crash events %v, want one DORMANT", after)
	}

	// The restart at the same endpoint: its row is its session's, DORMANT;
	// the plugin it does not have is gone from the list, with an event.
	p2 := startService(t, r.Addr(), "--component", name, "--listen", p1.Addr)
	eventually(t, 10*time.Second, "the plugin row removed", func() bool {
		resp, err := c.ListComponents(ctx, &coordinatorv1.ListComponentsRequest{})
		if err != nil {
			return false
		}
		for _, comp := range resp.GetComponents() {
			if comp.GetName() == plugin {
				return false
			}
		}
		return true
	})
	if e := w.find(coordinatorv1.EventType_EVENT_TYPE_COMPONENT_REMOVED, plugin); e == nil || !strings.Contains(e.GetMessage(), p1.Addr) {
		t.Errorf("COMPONENT_REMOVED event %v", e)
	}
	got = row(t, c, name)
	if got.GetSessionId() == session1 || got.GetSessionId() == "" || got.GetState() != dormant {
		t.Errorf("restarted row: session %s (old %s) state %s", got.GetSessionId(), session1, got.GetState())
	}
	if s := p2.state(t, name).GetState(); s != dormant {
		t.Errorf("restarted lifecycle %s", s)
	}
	noRepeats(t, "whole run", w.states(name))
}

// counter is a counter's value in reg (-1 when reg has no such metric).
func counter(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

func statesString(states []coordinatorv1.ComponentState) string {
	var b strings.Builder
	for _, s := range states {
		b.WriteString(strings.TrimPrefix(s.String(), "COMPONENT_STATE_") + ",")
	}
	return b.String()
}
