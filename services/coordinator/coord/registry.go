package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RegisterComponent adds or updates a registry entry; a dependency cycle is
// refused, naming it. A row belongs to the session that registered it:
// the same process registering again keeps the recorded state; another
// process (a restart) starts it DORMANT, and rows at the same endpoint
// owned by any other process are removed, so what a previous run
// registered (connectors it no longer has) does not linger.
func (c *Coordinator) RegisterComponent(ctx context.Context, comp Component) (Component, error) {
	if comp.Priority < 0 {
		comp.Priority = DefaultPriority
	}
	c.mu.Lock()
	st, err := c.current()
	if err != nil {
		c.mu.Unlock()
		return Component{}, err
	}
	if cycle := dependencyCycle(st.components, comp); cycle != nil {
		c.mu.Unlock()
		return Component{}, &CycleError{Cycle: cycle}
	}
	comp.Owner = ""
	if comp.Session != "" {
		s, err := c.sessionRefLocked(ctx, comp.Session)
		if err != nil {
			c.mu.Unlock()
			return Component{}, err
		}
		comp.Session, comp.Owner = s.id, s.owner
	}
	// The owner names the process instance (coordclient makes it unique per
	// process), so a process that re-opened its session is told apart from
	// a restarted one.
	old := st.components[comp.Name]
	switch {
	case old != nil && comp.Session == "":
		comp.Session, comp.Owner = old.Session, old.Owner
		fallthrough
	case old != nil && comp.Owner == old.Owner:
		comp.State, comp.Cause, comp.DesiredState, comp.StateChangedAt = old.State, old.Cause, old.DesiredState, old.StateChangedAt
	default:
		comp.State, comp.DesiredState, comp.StateChangedAt = StateDormant, StateUnspecified, time.Now()
	}
	var replaced []string
	if comp.Session != "" && comp.Endpoint != "" {
		for _, name := range sortedKeys(st.components) {
			if o := st.components[name]; name != comp.Name && o.Endpoint == comp.Endpoint && o.Owner != comp.Owner {
				replaced = append(replaced, name)
			}
		}
	}
	c.mu.Unlock()
	if err := c.putComponent(st, comp); err != nil {
		return Component{}, err
	}
	c.emit(Event{Type: EventComponentRegistered, Component: comp.Name, State: comp.State, Priority: comp.Priority, Bytes: comp.MemoryBytes,
		SessionID: comp.Session, Owner: comp.Owner})
	for _, name := range replaced {
		if err := c.deleteComponent(st, name); err != nil {
			return comp, err
		}
		c.emit(Event{Type: EventComponentRemoved, Component: name, SessionID: comp.Session, Owner: comp.Owner,
			Message: "replaced: " + comp.Endpoint + " registered again by session " + comp.Session})
	}
	return comp, nil
}

func (c *Coordinator) deleteComponent(st *state, name string) error {
	key := c.key(kComponents, name)
	done := make(chan error, 1)
	c.mu.Lock()
	if c.st != st {
		c.mu.Unlock()
		return ErrNotLeader
	}
	st.submit(&wop{keys: []string{key}, build: static(clientv3.OpDelete(key)), done: func(_ int64, _ int, err error) {
		if err == nil {
			c.mu.Lock()
			if c.st == st {
				delete(st.components, name)
			}
			c.mu.Unlock()
		}
		done <- err
	}})
	c.mu.Unlock()
	return <-done
}

// componentsEndedLocked marks the rows a session owned DORMANT, with the
// time and the cause, when the session ends: nothing of that process is
// loaded any more (it stopped, or it must re-open a session and activate
// again). One COMPONENT_STATE_CHANGED per row that changes.
func (c *Coordinator) componentsEndedLocked(st *state, s *session, why string) {
	c.markDormantLocked(st, func(comp *Component) string {
		if comp.Session != s.id {
			return ""
		}
		return fmt.Sprintf("owner session %s (%s) %s", s.id, s.owner, why)
	})
}

// orphanedComponentsLocked does the same, at the start of a term, for rows
// whose session ended while no coordinator led (its etcd lease expired
// meanwhile): the new leader finds the row still naming it.
func (c *Coordinator) orphanedComponentsLocked(st *state) {
	c.markDormantLocked(st, func(comp *Component) string {
		if comp.Session == "" || st.sessions[comp.Session] != nil {
			return ""
		}
		return fmt.Sprintf("owner session %s (%s) ended while no coordinator led", comp.Session, comp.Owner)
	})
}

// markDormantLocked writes DORMANT, now, and the cause for every row not
// DORMANT for which cause returns one, up to dormantRowsPerTxn rows in one
// transaction: a reader never sees a process's component DORMANT and its
// plugins still ACTIVE. Each row written is one event.
func (c *Coordinator) markDormantLocked(st *state, cause func(*Component) string) {
	type change struct {
		name     string
		old, new *Component
		put      clientv3.Op
		key      string
	}
	var changes []change
	for _, name := range sortedKeys(st.components) {
		old := st.components[name]
		if old.State == StateDormant {
			continue
		}
		why := cause(old)
		if why == "" {
			continue
		}
		comp := *old
		comp.State, comp.DesiredState, comp.StateChangedAt, comp.Cause = StateDormant, StateUnspecified, time.Now(), why
		val, _ := json.Marshal(comp)
		key := c.key(kComponents, name)
		changes = append(changes, change{name, old, &comp, clientv3.OpPut(key, string(val)), key})
	}
	for len(changes) > 0 {
		chunk := changes[:min(dormantRowsPerTxn, len(changes))]
		changes = changes[len(chunk):]
		keys, puts := make([]string, len(chunk)), make([]clientv3.Op, len(chunk))
		for i, ch := range chunk {
			keys[i], puts[i] = ch.key, ch.put
		}
		st.submit(&wop{keys: keys, build: static(puts...), done: func(_ int64, _ int, err error) {
			if err != nil {
				return
			}
			c.mu.Lock()
			if c.st == st {
				for _, ch := range chunk {
					if st.components[ch.name] == ch.old {
						st.components[ch.name] = ch.new
					}
				}
			}
			c.mu.Unlock()
			for _, ch := range chunk {
				c.emit(Event{Type: EventComponentStateChanged, Component: ch.name, State: ch.new.State, Message: ch.new.Cause,
					SessionID: ch.new.Session, Owner: ch.new.Owner})
			}
		}})
	}
}

// dormantRowsPerTxn bounds the rows one transaction marks DORMANT: far
// under etcd's --max-txn-ops (a process with more components than this
// has them marked in several transactions).
const dormantRowsPerTxn = 32

// dependencyCycle returns the cycle that adding comp would close, as
// "a -> b -> a", or nil. Unknown dependencies are allowed (registered later).
func dependencyCycle(all map[string]*Component, comp Component) []string {
	deps := func(name string) []string {
		if name == comp.Name {
			return comp.Dependencies
		}
		if c := all[name]; c != nil {
			return c.Dependencies
		}
		return nil
	}
	const (
		unvisited = iota
		onPath
		done
	)
	mark := map[string]int{}
	var path []string
	var visit func(n string) []string
	visit = func(n string) []string {
		mark[n] = onPath
		path = append(path, n)
		for _, d := range deps(n) {
			switch mark[d] {
			case onPath:
				for i, p := range path {
					if p == d {
						return append(append([]string(nil), path[i:]...), d)
					}
				}
			case unvisited:
				if cyc := visit(d); cyc != nil {
					return cyc
				}
			}
		}
		path = path[:len(path)-1]
		mark[n] = done
		return nil
	}
	return visit(comp.Name)
}

func (c *Coordinator) putComponent(st *state, comp Component) error {
	val, _ := json.Marshal(comp)
	if len(val) > c.maxRecordBytes() {
		field := "request"
		if len(comp.Dependencies) > 0 {
			field = "dependencies"
		}
		return &InvalidError{Field: field, Reason: fmt.Sprintf("the registry record would be %d bytes, more than the %d a record may take", len(val), c.maxRecordBytes())}
	}
	key := c.key(kComponents, comp.Name)
	done := make(chan error, 1)
	c.mu.Lock()
	if c.st != st {
		c.mu.Unlock()
		return ErrNotLeader
	}
	st.submit(&wop{keys: []string{key}, build: static(clientv3.OpPut(key, string(val))), done: func(_ int64, _ int, err error) {
		if err == nil {
			c.mu.Lock()
			if c.st == st {
				cp := comp
				st.components[comp.Name] = &cp
			}
			c.mu.Unlock()
		}
		done <- err
	}})
	c.mu.Unlock()
	return <-done
}

// Components lists one page of registry entries in name order, and the
// next page's token.
func (c *Coordinator) Components(p Page) ([]Component, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.current()
	if err != nil {
		return nil, "", err
	}
	page, next := pageOf(sortedKeys(st.components), p)
	out := make([]Component, 0, len(page))
	for _, n := range page {
		out = append(out, *st.components[n])
	}
	return out, next, nil
}

// Component returns one registry entry.
func (c *Coordinator) Component(name string) (Component, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.current()
	if err != nil {
		return Component{}, err
	}
	comp := st.components[name]
	if comp == nil {
		return Component{}, &NotFoundError{Kind: "component", ID: name}
	}
	return *comp, nil
}

// SetDesiredState records what an operator asked for; the component's next
// settled state clears it (see ReportState).
func (c *Coordinator) SetDesiredState(ctx context.Context, name string, desired ComponentState) (Component, error) {
	return c.updateComponent(name, func(comp *Component) { comp.DesiredState = desired })
}

// ClearDesiredState forgets an operator's request once the component is in
// the state asked for (it may have been already: then it reports nothing).
func (c *Coordinator) ClearDesiredState(ctx context.Context, name string) (Component, error) {
	return c.updateComponent(name, func(comp *Component) {
		if comp.DesiredState == comp.State {
			comp.DesiredState = StateUnspecified
		}
	})
}

// ReportState records the state a component's runtime reports. A report
// from another session than the row's moves the row to it (the process
// re-opened its session). Only a change of state is an event, once; a
// settled state (ACTIVE, DORMANT, FAILED) clears the operator's request.
func (c *Coordinator) ReportState(ctx context.Context, name string, state ComponentState, cause, session string) (Component, error) {
	owner := ""
	if session != "" {
		c.mu.Lock()
		var err error
		session, owner, err = c.reporterLocked(ctx, session)
		c.mu.Unlock()
		if err != nil {
			return Component{}, err
		}
	}
	changed := false
	comp, err := c.updateComponent(name, func(comp *Component) {
		changed = comp.State != state
		if changed || comp.Cause != cause {
			comp.StateChangedAt = time.Now()
		}
		comp.State, comp.Cause = state, cause
		if state == StateActive || state == StateDormant || state == StateFailed {
			comp.DesiredState = StateUnspecified
		}
		if session != "" {
			comp.Session, comp.Owner = session, owner
		}
	})
	if err == nil && changed {
		c.emit(Event{Type: EventComponentStateChanged, Component: name, State: state, Message: cause,
			SessionID: comp.Session, Owner: comp.Owner})
	}
	return comp, err
}

func (c *Coordinator) updateComponent(name string, change func(*Component)) (Component, error) {
	c.mu.Lock()
	st, err := c.current()
	if err != nil {
		c.mu.Unlock()
		return Component{}, err
	}
	old := st.components[name]
	if old == nil {
		c.mu.Unlock()
		return Component{}, &NotFoundError{Kind: "component", ID: name}
	}
	comp := *old
	c.mu.Unlock()
	change(&comp)
	return comp, c.putComponent(st, comp)
}

// sessionRefLocked finds the session a registry row is to belong to. The
// session_id must prove the session (<public>.<secret>, and with mTLS the
// caller must own it) like any other call: a row names its owning session,
// ends DORMANT with it, and a restart's rows replace those of another owner
// at the same endpoint, so a public id (which anyone can read from a list)
// must not be enough to claim or displace rows.
func (c *Coordinator) sessionRefLocked(ctx context.Context, id string) (*session, error) {
	_, s, err := c.sessionLocked(ctx, id)
	return s, err
}

// reporterLocked is the public id and owner of the session a state report
// came from, or "" if that session has ended (the row is then not handed
// to it, and the report still counts). A session_id that does not prove its
// session is refused.
func (c *Coordinator) reporterLocked(ctx context.Context, id string) (string, string, error) {
	s, err := c.sessionRefLocked(ctx, id)
	var nf *NotFoundError
	switch {
	case errors.As(err, &nf):
		return "", "", nil
	case err != nil:
		return "", "", err
	}
	return s.id, s.owner, nil
}
