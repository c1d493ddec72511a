package cli

import (
	"context"
	"fmt"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
)

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := e.flags("status", "")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	st, err := call(ctx, e, coordinatorv1.CoordinatorServiceClient.GetStatus, &coordinatorv1.GetStatusRequest{})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, st)
	}
	tw := newTable(e.stdout)
	row(tw, "LEADER", st.GetLeader())
	if st.GetReplica() != "" && st.GetReplica() != st.GetLeader() {
		row(tw, "REPLICA", st.GetReplica()+" (answered, forwarding to the leader)")
	}
	row(tw, "BUDGET", bytesStr(st.GetBudgetBytes()))
	row(tw, "USED", fmt.Sprintf("%s (%s)", bytesStr(st.GetUsedBytes()), percent(st.GetUsedBytes(), st.GetBudgetBytes())))
	row(tw, "FREE", bytesStr(st.GetBudgetBytes()-st.GetUsedBytes()))
	row(tw, "SESSIONS", fmt.Sprint(st.GetSessions()))
	row(tw, "LEASES", fmt.Sprint(st.GetLeases()))
	row(tw, "LOCKS", fmt.Sprint(st.GetLocks()))
	row(tw, "WAITERS", fmt.Sprintf("%d (memory %d, locks %d)", st.GetWaiters(), st.GetMemoryWaiters(), st.GetLockWaiters()))
	return tw.Flush()
}
