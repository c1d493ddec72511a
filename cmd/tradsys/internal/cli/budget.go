package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/tradsys/mesh/pkg/config"
	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
)

// runBudget shows or sets the memory budget every coordinator replica
// grants from (stored in etcd).
func runBudget(ctx context.Context, e *env, args []string) error {
	fs := e.flags("budget", "[set SIZE]")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		st, err := call(ctx, e, coordinatorv1.CoordinatorServiceClient.GetStatus, &coordinatorv1.GetStatusRequest{})
		if err != nil {
			return err
		}
		if e.json() {
			return printJSON(e.stdout, &coordinatorv1.SetBudgetResponse{BudgetBytes: st.GetBudgetBytes(), UsedBytes: st.GetUsedBytes(),
				OverBytes: max(st.GetUsedBytes()-st.GetBudgetBytes(), 0)})
		}
		_, err = fmt.Fprintf(e.stdout, "budget %s, %s leased\n", bytesStr(st.GetBudgetBytes()), bytesStr(st.GetUsedBytes()))
		return err
	case len(pos) == 2 && pos[0] == "set":
	default:
		return usagef("budget: takes no argument, or: set SIZE (for example 2GiB)")
	}
	size, err := config.ParseByteSize(pos[1])
	if err != nil {
		return usagef("budget set: size %q: %v", pos[1], err)
	}
	resp, err := call(ctx, e, coordinatorv1.CoordinatorServiceClient.SetBudget, &coordinatorv1.SetBudgetRequest{BudgetBytes: size})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	fmt.Fprintf(e.stdout, "budget %s (was %s), %s leased\n", bytesStr(resp.GetBudgetBytes()),
		bytesStr(resp.GetPreviousBudgetBytes()), bytesStr(resp.GetUsedBytes()))
	if resp.GetOverBytes() > 0 {
		var asked []string
		for _, l := range resp.GetPreempted() {
			asked = append(asked, fmt.Sprintf("%s (%s, %s, priority %d)", l.GetLeaseId(), l.GetComponent(), bytesStr(l.GetBytes()), l.GetPriority()))
		}
		fmt.Fprintf(e.stdout, "%s over: nothing is granted until the leases fit\n", bytesStr(resp.GetOverBytes()))
		if len(asked) > 0 {
			fmt.Fprintf(e.stdout, "asked to go: %s\n", strings.Join(asked, ", "))
		}
	}
	return nil
}
