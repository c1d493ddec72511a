package server_test

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	coordinatorv1 "github.com/tradsys/mesh/proto/tradsys/coordinator/v1"
	"github.com/tradsys/mesh/services/coordinator/coordtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Issue 9, item 8: every list RPC pages (page_size, page_token, ordered),
// ListLeases filters by session and component; a request without them
// gets everything up to the page limit, as before.
func TestListsPageAndFilter(t *testing.T) {
	const n, sessions, components = 2500, 5, 4
	_, c := coordtest.Start(t, coordtest.Config{Budget: 1 << 30})
	ctx := ctxT(t)
	var sids, pubs []string
	for i := range sessions {
		resp, err := c.CreateSession(ctx, &coordinatorv1.CreateSessionRequest{Owner: fmt.Sprint("s", i), Ttl: durationpb.New(2 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		sids, pubs = append(sids, resp.GetSessionId()), append(pubs, resp.GetPublicId())
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_, err := acquire(ctx, c, sids[i%sessions], fmt.Sprint("comp", i%components), 1, 50, false, 0)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	all := func(req *coordinatorv1.ListLeasesRequest) (ids []string, pages int) {
		t.Helper()
		for {
			resp, err := c.ListLeases(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, l := range resp.GetLeases() {
				ids = append(ids, l.GetLeaseId())
				if req.GetSessionId() != "" && l.GetSessionId() != req.GetSessionId() ||
					req.GetComponent() != "" && l.GetComponent() != req.GetComponent() {
					t.Fatalf("filter %v let through %v", req, l)
				}
			}
			if resp.GetNextPageToken() == "" {
				return ids, pages
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
	check := func(what string, ids []string, pages, wantN, wantPages int) {
		t.Helper()
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("%s: lease %s listed twice", what, id)
			}
			seen[id] = true
		}
		if len(ids) != wantN || pages != wantPages || !sort.StringsAreSorted(ids) {
			t.Fatalf("%s: %d leases in %d pages (sorted %v), want %d in %d", what, len(ids), pages, sort.StringsAreSorted(ids), wantN, wantPages)
		}
	}
	ids, pages := all(&coordinatorv1.ListLeasesRequest{})
	check("no paging fields", ids, pages, n, 1)
	ids, pages = all(&coordinatorv1.ListLeasesRequest{PageSize: 1000})
	check("pages of 1000", ids, pages, n, 3)
	ids, pages = all(&coordinatorv1.ListLeasesRequest{PageSize: 300, SessionId: pubs[1]})
	check("one session", ids, pages, n/sessions, 2)
	ids, pages = all(&coordinatorv1.ListLeasesRequest{PageSize: 1000, Component: "comp3"})
	check("one component", ids, pages, n/components, 1)
	_, err := c.ListLeases(ctx, &coordinatorv1.ListLeasesRequest{PageSize: -1})
	wantCode(t, err, codes.InvalidArgument, "page_size")

	// Locks and components page too.
	for i := range 25 {
		if _, err := lock(ctx, c, sids[i%sessions], fmt.Sprintf("lock/%02d", i), 0); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for tok, pages := "", 0; ; pages++ {
		resp, err := c.ListLocks(ctx, &coordinatorv1.ListLocksRequest{PageSize: 10, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range resp.GetLocks() {
			names = append(names, l.GetName())
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			if len(names) != 25 || pages != 2 || !sort.StringsAreSorted(names) {
				t.Fatalf("locks %v in %d pages", names, pages+1)
			}
			break
		}
	}
	for i := range 15 {
		if _, err := c.RegisterComponent(ctx, &coordinatorv1.RegisterComponentRequest{Name: fmt.Sprintf("svc%02d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := c.ListComponents(ctx, &coordinatorv1.ListComponentsRequest{PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := c.ListComponents(ctx, &coordinatorv1.ListComponentsRequest{PageSize: 10, PageToken: first.GetNextPageToken()})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.GetComponents()) != 10 || len(rest.GetComponents()) != 5 || rest.GetNextPageToken() != "" {
		t.Fatalf("components: %d then %d (next %q)", len(first.GetComponents()), len(rest.GetComponents()), rest.GetNextPageToken())
	}
}
