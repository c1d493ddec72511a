package server

import (
	"errors"
	"testing"

	"github.com/tradsys/mesh/services/strategy/strategies"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The orders service's OUT_OF_RANGE (with where its updates go on) is the
// domain's gap; any other failure stays as it is.
func TestUpdatesErrorNamesTheGap(t *testing.T) {
	outOfRange := func(reason, key, value string) error {
		st, err := status.New(codes.OutOfRange, "no updates there").WithDetails(&errdetails.ErrorInfo{Reason: reason,
			Domain: "orders.tradsys", Metadata: map[string]string{key: value}})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	for _, tc := range []struct {
		err    error
		resume uint64
	}{
		{outOfRange("UPDATES_TRIMMED", "oldest_sequence", "9"), 9},
		{outOfRange("UPDATE_SEQUENCE_AHEAD", "next_sequence", "42"), 42},
		{status.Error(codes.OutOfRange, "no details"), 0},
		{status.Error(codes.Unavailable, "down"), 0},
	} {
		err := updatesError(3, tc.err)
		var gap *strategies.UpdatesGapError
		switch {
		case tc.resume == 0 && errors.As(err, &gap):
			t.Errorf("%v became a gap: %v", tc.err, gap)
		case tc.resume != 0 && (!errors.As(err, &gap) || gap.Requested != 3 || gap.ResumeFrom != tc.resume):
			t.Errorf("%v: %v, want a gap from 3 resuming at %d", tc.err, err, tc.resume)
		}
	}
}
