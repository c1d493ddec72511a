package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
)

func runComponents(ctx context.Context, e *env, args []string) error {
	fs := e.flags("components", "[NAME]")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usagef("components: at most one NAME, got %d arguments", len(pos))
	}
	name := ""
	if len(pos) == 1 {
		name = pos[0]
	}
	resp, err := call(ctx, e, coordinatorv1.CoordinatorServiceClient.ListComponents, &coordinatorv1.ListComponentsRequest{Name: name})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	return componentTable(e.stdout, resp.GetComponents())
}

func componentTable(w io.Writer, comps []*coordinatorv1.Component) error {
	tw := newTable(w)
	row(tw, "NAME", "STATE", "SINCE", "DESIRED", "MEMORY", "PRIORITY", "DEPENDENCIES", "ENDPOINT", "CAUSE")
	for _, c := range comps {
		row(tw, c.GetName(), stateName(c.GetState()), since(c), stateName(c.GetDesiredState()), bytesStr(c.GetMemoryBytes()),
			fmt.Sprint(c.GetPriority()), list(c.GetDependencies()), c.GetEndpoint(), c.GetCause())
	}
	return tw.Flush()
}

// since is how long the component has been in its state ("42s", "3h5m0s").
func since(c *coordinatorv1.Component) string {
	if c.GetStateChangedAt() == nil {
		return ""
	}
	return time.Since(c.GetStateChangedAt().AsTime()).Round(time.Second).String()
}

func runActivate(ctx context.Context, e *env, args []string) error {
	return setDesired(ctx, e, "activate", args, coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE)
}

func runDeactivate(ctx context.Context, e *env, args []string) error {
	return setDesired(ctx, e, "deactivate", args, coordinatorv1.ComponentState_COMPONENT_STATE_DORMANT)
}

// setDesired asks the coordinator to activate or deactivate a component;
// with --wait it then polls until the component reaches the state (or
// FAILED, an error) within --wait's duration.
func setDesired(ctx context.Context, e *env, name string, args []string, want coordinatorv1.ComponentState) error {
	fs := e.flags(name, "NAME [--wait DURATION]")
	wait := fs.Duration("wait", 0, "wait up to this long for the component to reach the state (0: do not wait)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	comp, err := oneName(fs, pos)
	if err != nil {
		return err
	}
	var c *coordinatorv1.Component
	if want == coordinatorv1.ComponentState_COMPONENT_STATE_ACTIVE {
		resp, err := call(ctx, e, coordinatorv1.CoordinatorServiceClient.ActivateComponent, &coordinatorv1.ActivateComponentRequest{Name: comp})
		if err != nil {
			return err
		}
		c = resp.GetComponent()
		if *wait <= 0 && e.json() {
			return printJSON(e.stdout, resp)
		}
	} else {
		resp, err := call(ctx, e, coordinatorv1.CoordinatorServiceClient.DeactivateComponent, &coordinatorv1.DeactivateComponentRequest{Name: comp})
		if err != nil {
			return err
		}
		c = resp.GetComponent()
		if *wait <= 0 && e.json() {
			return printJSON(e.stdout, resp)
		}
	}
	if *wait > 0 {
		if c, err = waitState(ctx, e, comp, want, *wait); err != nil {
			return err
		}
		if e.json() {
			return printJSON(e.stdout, c)
		}
	}
	return componentTable(e.stdout, []*coordinatorv1.Component{c})
}

func waitState(ctx context.Context, e *env, name string, want coordinatorv1.ComponentState, d time.Duration) (*coordinatorv1.Component, error) {
	deadline := time.Now().Add(d)
	for {
		resp, err := call(ctx, e, coordinatorv1.CoordinatorServiceClient.ListComponents, &coordinatorv1.ListComponentsRequest{Name: name})
		if err != nil {
			return nil, err
		}
		var c *coordinatorv1.Component
		for _, x := range resp.GetComponents() {
			if x.GetName() == name {
				c = x
			}
		}
		switch {
		case c == nil:
			return nil, fmt.Errorf("component %q disappeared from the registry", name)
		case c.GetState() == want:
			return c, nil
		case c.GetState() == coordinatorv1.ComponentState_COMPONENT_STATE_FAILED:
			return nil, fmt.Errorf("component %q FAILED: %s", name, c.GetCause())
		case time.Now().After(deadline):
			return nil, fmt.Errorf("component %q still %s after %s (want %s)", name, stateName(c.GetState()), d, stateName(want))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
