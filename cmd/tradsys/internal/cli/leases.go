package cli

import (
	"context"
	"fmt"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
)

func runLeases(ctx context.Context, e *env, args []string) error {
	fs := e.flags("leases", "[--session S]")
	session := fs.String("session", "", "only leases of this session")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	resp, err := call(ctx, e, coordinatorv1.CoordinatorServiceClient.ListLeases, &coordinatorv1.ListLeasesRequest{SessionId: *session})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	now := time.Now()
	tw := newTable(e.stdout)
	row(tw, "LEASE", "SESSION", "OWNER", "COMPONENT", "BYTES", "USED", "PRIORITY", "PREEMPTIBLE", "TOKEN", "AGE", "REVOKE")
	for _, l := range resp.GetLeases() {
		used := "-" // the holder never reported
		if l.UsedBytes != nil {
			used = bytesStr(l.GetUsedBytes())
		}
		row(tw, l.GetLeaseId(), l.GetSessionId(), l.GetOwner(), l.GetComponent(), bytesStr(l.GetBytes()), used,
			fmt.Sprint(l.GetPriority()), yesNo(l.GetPreemptible()), fmt.Sprint(l.GetFencingToken()),
			age(l.GetGrantedAt(), now), until(l.GetRevokeAt(), now))
	}
	return tw.Flush()
}

func runLocks(ctx context.Context, e *env, args []string) error {
	fs := e.flags("locks", "")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	resp, err := call(ctx, e, coordinatorv1.CoordinatorServiceClient.ListLocks, &coordinatorv1.ListLocksRequest{})
	if err != nil {
		return err
	}
	if e.json() {
		return printJSON(e.stdout, resp)
	}
	now := time.Now()
	tw := newTable(e.stdout)
	row(tw, "NAME", "SESSION", "OWNER", "TOKEN", "RANK", "AGE", "WAITERS")
	for _, l := range resp.GetLocks() {
		rank := ""
		if l.GetRank() != 0 {
			rank = fmt.Sprint(l.GetRank())
		}
		row(tw, l.GetName(), l.GetSessionId(), l.GetOwner(), fmt.Sprint(l.GetFencingToken()), rank,
			age(l.GetAcquiredAt(), now), list(l.GetWaiters()))
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
