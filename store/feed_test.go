package store_test

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

// following is a FollowFilters run with the index it swapped in last.
type following struct {
	live    atomic.Pointer[fakeIndex]
	built   atomic.Int32 // indexes newIndex made
	loaded  chan int     // each swap's count
	done    chan struct{}
	retries atomic.Int64 // "... failed; retrying" warnings logged
}

// retryCounter counts the feed's retry warnings, so a test can wait for
// failed attempts instead of sleeping through them.
type retryCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h retryCounter) Handle(ctx context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "retrying") {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h retryCounter) WithAttrs(a []slog.Attr) slog.Handler {
	return retryCounter{h.Handler.WithAttrs(a), h.n}
}

// startFollowing runs FollowFilters until ctx is done; first, when not
// nil, is the first index it builds.
func startFollowing(t *testing.T, ctx context.Context, s *store.Redis, first *fakeIndex) *following {
	f := &following{loaded: make(chan int, 16), done: make(chan struct{})}
	newIndex := func() store.FilterIndex {
		if f.built.Add(1) == 1 && first != nil {
			return first
		}
		return &fakeIndex{ids: map[string]matcher.Filter{}}
	}
	swap := func(ix store.FilterIndex, n int) {
		f.live.Store(ix.(*fakeIndex))
		f.loaded <- n
	}
	go func() {
		defer close(f.done)
		s.FollowFilters(ctx, newIndex, swap, slog.New(retryCounter{testenv.Logger(t).Handler(), &f.retries}))
	}()
	return f
}

func (f *following) current() *fakeIndex { return f.live.Load() }

func (f *following) wait(t *testing.T) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		t.Fatal("FollowFilters did not return within 5s of the cancel")
	}
}

// A replica that fell behind a trimmed feed reloads into a fresh index:
// a filter deleted in the gap, whose change it never read, is gone.
func TestFeedGapReloadDropsFiltersDeletedMeanwhile(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := mustStore(t, time.Minute)
	gone, kept := mustSub(t, s, "daily"), mustSub(t, s, "daily")
	slow := &fakeIndex{ids: map[string]matcher.Filter{}}
	f := startFollowing(t, ctx, s, slow)
	if n := <-f.loaded; n != 2 {
		t.Fatalf("initial load: got %d filters, want 2", n)
	}
	// The replica stalls applying a change (its Add blocks) ...
	gate := make(chan struct{})
	slow.gate.Store(&gate)
	stalled := mustSub(t, s, "daily")
	// ... while a subscription is deleted and the feed is trimmed past
	// that deletion, as MAXLEN does when a replica is far behind.
	if err := s.DeleteSubscription(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	later := mustSub(t, s, "daily")
	if err := s.ClientForTest().XTrimMaxLen(ctx, s.PrefixForTest()+"changes", 1).Err(); err != nil {
		t.Fatal(err)
	}
	close(gate)

	select {
	case n := <-f.loaded:
		if n != 3 {
			t.Errorf("reload: got %d filters, want 3", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reload within 5s of the gap")
	}
	ix := f.current()
	if ix == slow {
		t.Fatal("the reload filled the old index instead of swapping in a fresh one")
	}
	for _, id := range []string{kept.ID, stalled.ID, later.ID} {
		if !ix.has(id) {
			t.Errorf("after the reload: %s missing from the index", id)
		}
	}
	if ix.has(gone.ID) {
		t.Errorf("after the reload: %s, deleted during the gap, is still in the index", gone.ID)
	}
	// The fresh index is followed from then on.
	next := mustSub(t, s, "daily")
	testenv.Eventually(t, 2*time.Second, func() bool { return f.current().has(next.ID) }, "change after the reload not applied")
	cancel()
	f.wait(t)
}

// A failed re-read of changed filters is retried with backoff, from the
// same feed position, without a reload and without stopping the feed.
func TestFeedRetriesAFailedRefreshInPlace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := mustStore(t, time.Minute)
	mustSub(t, s, "daily")
	f := startFollowing(t, ctx, s, nil)
	<-f.loaded
	ix := f.current()

	// The filters hash cannot be read (WRONGTYPE) when a change arrives.
	rdb, filters := s.ClientForTest(), s.FiltersKeyForTest("sub-new")
	if n, _ := rdb.Exists(ctx, filters).Result(); n == 1 {
		if err := rdb.Rename(ctx, filters, filters+":aside").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Set(ctx, filters, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, filters+":aside", "sub-new", `{"keywords":"backend"}`).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.PrefixForTest() + "changes", Values: []any{"id", "sub-new"}}).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return f.retries.Load() >= 2 }, "no failed tries logged")
	if ix.has("sub-new") {
		t.Fatal("change applied while its filter could not be read")
	}
	if err := rdb.Rename(ctx, filters+":aside", filters).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return ix.has("sub-new") }, "change not applied once Redis answered again")
	if n := f.built.Load(); n != 1 || f.current() != ix {
		t.Errorf("got %d indexes built, want the failure retried in the same index (no reload)", n)
	}
	cancel()
	f.wait(t)
}

// A load that fails (here the first one) is retried with backoff; it does
// not end FollowFilters.
func TestFeedRetriesAFailedLoad(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := mustStore(t, time.Minute)
	sub := mustSub(t, s, "daily")
	rdb, filters := s.ClientForTest(), s.FiltersKeyForTest(sub.ID)
	if err := rdb.Rename(ctx, filters, filters+":aside").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, filters, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	f := startFollowing(t, ctx, s, nil)
	testenv.Eventually(t, 10*time.Second, func() bool { return f.retries.Load() >= 2 }, "no failed loads logged")
	select {
	case <-f.loaded:
		t.Fatal("loaded while the filters could not be read")
	case <-f.done:
		t.Fatal("FollowFilters returned on a load error")
	default:
	}
	if err := rdb.Rename(ctx, filters+":aside", filters).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-f.loaded:
		if n != 1 || !f.current().has(sub.ID) {
			t.Fatalf("load after the retry: got %d filters, want %s", n, sub.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no load within 5s of Redis answering again")
	}
	cancel()
	f.wait(t)
}
