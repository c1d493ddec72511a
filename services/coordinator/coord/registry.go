package coord

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// RegisterComponent adds or updates a registry entry. Re-registering keeps
// the recorded state. A dependency cycle is refused, naming it.
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
	if old := st.components[comp.Name]; old != nil {
		comp.State, comp.Cause, comp.DesiredState, comp.StateChangedAt = old.State, old.Cause, old.DesiredState, old.StateChangedAt
	} else {
		comp.State, comp.DesiredState, comp.StateChangedAt = StateDormant, StateDormant, time.Now()
	}
	c.mu.Unlock()
	if err := c.putComponent(st, comp); err != nil {
		return Component{}, err
	}
	c.emit(Event{Type: EventComponentRegistered, Component: comp.Name, State: comp.State, Priority: comp.Priority, Bytes: comp.MemoryBytes})
	return comp, nil
}

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

// Components lists registry entries (one, when name is set).
func (c *Coordinator) Components(name string) ([]Component, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.current()
	if err != nil {
		return nil, err
	}
	if name != "" {
		comp := st.components[name]
		if comp == nil {
			return nil, &NotFoundError{Kind: "component", ID: name}
		}
		return []Component{*comp}, nil
	}
	out := make([]Component, 0, len(st.components))
	for _, n := range sortedKeys(st.components) {
		out = append(out, *st.components[n])
	}
	return out, nil
}

// Component returns one registry entry.
func (c *Coordinator) Component(name string) (Component, error) {
	list, err := c.Components(name)
	if err != nil {
		return Component{}, err
	}
	return list[0], nil
}

// SetDesiredState records what an operator asked for.
func (c *Coordinator) SetDesiredState(ctx context.Context, name string, desired ComponentState) (Component, error) {
	return c.updateComponent(name, func(comp *Component) { comp.DesiredState = desired })
}

// ReportState records the state a component's runtime reports.
func (c *Coordinator) ReportState(ctx context.Context, name string, state ComponentState, cause string) (Component, error) {
	comp, err := c.updateComponent(name, func(comp *Component) {
		if comp.State != state || comp.Cause != cause {
			comp.StateChangedAt = time.Now()
		}
		comp.State, comp.Cause = state, cause
	})
	if err == nil {
		c.emit(Event{Type: EventComponentStateChanged, Component: name, State: state, Message: cause})
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
