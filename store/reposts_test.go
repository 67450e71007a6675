package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

func mustRepostStore(t *testing.T) *store.Redis {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	return store.New(rdb, store.Config{Prefix: prefix, InstantWindow: time.Minute, PendingLimit: 1000, RepostWindow: time.Hour})
}

// repostModel is docs/events.md's repost rule, written plainly: a
// jobs.created whose canonical_id, url or (company, title, first
// location) is an alias of an open job seen before is that job; its id is
// then that job's for good; a closed job's aliases are taken over by the
// next posting of the role. (Nothing expires within a test.)
type repostModel struct {
	alias  map[string]string          // "reason\x00value" -> job id
	of     map[string]jobevent.Repost // event id -> its answer, once resolved
	closed map[string]int             // job id -> the number of the event that closed it
}

func newRepostModel() *repostModel {
	return &repostModel{alias: map[string]string{}, of: map[string]jobevent.Repost{}, closed: map[string]int{}}
}

// closedAt reports whether job was closed by event n or an earlier one.
func (m *repostModel) closedAt(job string, n int) bool {
	c, ok := m.closed[job]
	return ok && c <= n
}

// resolve is the rule for event number n of the stream.
func (m *repostModel) resolve(ev jobevent.Event, n int) jobevent.Repost {
	id := ev.Job.ID
	var got jobevent.Repost
	switch of, ok := m.of[id]; {
	case ok:
		got = of
	case ev.Kind != jobevent.Created:
		got = jobevent.Repost{Of: id}
	default:
		got = jobevent.Repost{Of: id}
		aliases := store.RepostAliases(&ev.Job)
		order := []jobevent.RepostReason{jobevent.RepostCanonicalID, jobevent.RepostApplyURL, jobevent.RepostSameRole}
		for _, r := range order {
			v, ok := aliases[r]
			if !ok {
				continue
			}
			if j, ok := m.alias[string(r)+"\x00"+v]; ok && j != id && !m.closedAt(j, n) {
				got = jobevent.Repost{Of: j, Reason: r}
				break
			}
		}
		for _, r := range order {
			v, ok := aliases[r]
			if !ok {
				continue
			}
			k := string(r) + "\x00" + v
			if j, ok := m.alias[k]; !ok || j == id || got.Of == id {
				m.alias[k] = got.Of
			}
		}
		m.of[id] = got
	}
	if ev.Kind == jobevent.Closed {
		if _, ok := m.closed[got.Of]; !ok {
			m.closed[got.Of] = n
		}
	}
	return got
}

// TestRepostsAgainstModel runs random streams of posts, reposts (under new
// ids, by canonical_id, url or the same role), updates, closes and
// redeliveries through ResolveRepostAt and Record, and checks each
// resolution against the plain model, and each subscription's pending
// items: one per job it matched, however many postings of the job did.
func TestRepostsAgainstModel(t *testing.T) {
	ctx := context.Background()
	companies := []string{"Acme", "acme ", "Globex"}
	titles := []string{"Backend Engineer", "back-end engineer", "Data Engineer"}
	locs := []string{"Seattle, WA", "seattle ,wa", "Austin, TX", ""}
	urls := []string{"", "https://jobs.example/1", "HTTPS://Jobs.example/1#apply", "https://jobs.example/2?utm_source=x"}
	canon := []string{"", "", "role-1", "role-2"}
	collapsed := 0
	for seed := range 12 {
		r := rand.New(rand.NewPCG(uint64(seed), 16))
		s := mustRepostStore(t)
		subs := make([]*store.Subscription, 3)
		for i := range subs {
			subs[i] = mustSub(t, s, "instant")
		}
		m := newRepostModel()
		var ids []string
		var events []jobevent.Event
		holds := map[string]map[string]bool{} // sub -> jobs it was matched with
		// Even seeds resolve one event at a time (ResolveRepostAt), odd
		// ones in batches of 1 to 8 (ResolveRepostsAt), as the consumer.
		batched := seed%2 == 1
		var batch []jobevent.Event
		var wants []jobevent.Repost
		var nums []int // each batch event's number in the stream
		flush := func() {
			var got []jobevent.Repost
			if batched {
				var err error
				if got, err = s.ResolveRepostsAt(ctx, batch, time.Hour, t0); err != nil {
					t.Fatal(err)
				}
			} else {
				for _, ev := range batch {
					r, err := s.ResolveRepostAt(ctx, ev, time.Hour, t0)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, r)
				}
			}
			for i, ev := range batch {
				if got[i].Of != wants[i].Of || got[i].Reason != wants[i].Reason {
					t.Fatalf("seed %d: %s %s: got %+v want %+v", seed, ev.Kind, ev.Job.ID, got[i], wants[i])
				}
				if ev.Kind == jobevent.Created && got[i].Of != ev.Job.ID {
					collapsed++
				}
				rec := ev
				rec.Job.ID = got[i].Of
				if rec.Kind == jobevent.Created && got[i].Of != ev.Job.ID {
					rec.Kind = jobevent.Updated
				}
				var matched []string
				if rec.Kind != jobevent.Closed {
					for _, sub := range subs {
						if r.IntN(2) == 0 {
							matched = append(matched, sub.ID)
						}
					}
				}
				if _, err := s.RecordResults(ctx, []jobevent.Matched{{Event: rec, SubscriptionIDs: matched}}, t0); err != nil {
					t.Fatal(err)
				}
				if !m.closedAt(got[i].Of, nums[i]) {
					for _, id := range matched {
						if holds[id] == nil {
							holds[id] = map[string]bool{}
						}
						holds[id][got[i].Of] = true
					}
				}
			}
			batch, wants, nums = batch[:0], wants[:0], nums[:0]
		}
		size := 1 + r.IntN(8)
		for step := range 60 {
			var ev jobevent.Event
			switch k := r.IntN(10); {
			case k < 6 || len(ids) == 0:
				id := fmt.Sprintf("s%d-j%d", seed, step)
				ids = append(ids, id)
				j := matcher.Job{ID: id, Company: companies[r.IntN(len(companies))], Title: titles[r.IntN(len(titles))],
					URL: urls[r.IntN(len(urls))], CanonicalID: canon[r.IntN(len(canon))]}
				if l := locs[r.IntN(len(locs))]; l != "" {
					j.Locations = []string{l}
				}
				ev = jobevent.Event{Kind: jobevent.Created, Job: j}
			case k < 8:
				ev = jobevent.Event{Kind: jobevent.Updated, Job: matcher.Job{ID: ids[r.IntN(len(ids))], Title: "Backend Engineer", Company: "Acme"}}
			case k < 9 && len(events) > 0:
				ev = events[r.IntN(len(events))] // a redelivery
			default:
				ev = jobevent.Event{Kind: jobevent.Closed, Job: matcher.Job{ID: ids[r.IntN(len(ids))]}}
			}
			if ev.Kind == jobevent.Closed && r.IntN(3) > 0 {
				continue // closes are rare, or every role ends up new
			}
			events = append(events, ev)
			batch = append(batch, ev)
			wants = append(wants, m.resolve(ev, len(events)))
			nums = append(nums, len(events))
			if len(batch) >= size {
				flush()
				size = 1 + r.IntN(8)
			}
		}
		flush()
		for _, sub := range subs {
			items := pending(t, s, sub.ID)
			if got, want := len(items), len(holds[sub.ID]); got != want {
				t.Errorf("seed %d: sub %s: got %d pending items want %d, one per job matched", seed, sub.ID, got, want)
			}
			sorted := slices.Clone(items)
			slices.Sort(sorted)
			if len(slices.Compact(sorted)) != len(items) {
				t.Errorf("seed %d: sub %s: a job pending twice: %v", seed, sub.ID, items)
			}
		}
	}
	if collapsed < 50 {
		t.Errorf("the streams collapsed %d postings: too few to test the rule", collapsed)
	}
	t.Logf("%d postings collapsed", collapsed)
}

// A repost under a new id of a job already delivered reaches no one who
// holds it, reaches a subscription created after the original, carries
// the newest posting's data, and the repost's own updates and close map
// to the original; window 0 turns it off.
func TestRepostFollowsTheKnownJobRule(t *testing.T) {
	ctx := context.Background()
	s := mustRepostStore(t)
	a := mustSub(t, s, "instant")
	orig := jobevent.Event{Kind: jobevent.Created, Job: matcher.Job{ID: "b1-100", Title: "Backend Engineer", Company: "Acme",
		Locations: []string{"Seattle, WA"}, URL: "https://board.example/100"}}
	if got, err := s.ResolveRepostAt(ctx, orig, time.Hour, t0); err != nil || got.Of != "b1-100" || got.Reason != "" {
		t.Fatalf("original: got %+v, %v want its own id", got, err)
	}
	record(t, s, t0, jobevent.Matched{Event: orig, SubscriptionIDs: []string{a.ID}})
	late := mustSub(t, s, "instant")

	repost := orig
	repost.Job.ID, repost.Job.Title, repost.Job.URL = "b1-200", "Back-end  engineer", "https://board.example/200"
	got, err := s.ResolveRepostAt(ctx, repost, time.Hour, t0.Add(time.Hour/2))
	if err != nil || got.Of != "b1-100" || got.Reason != jobevent.RepostSameRole {
		t.Fatalf("repost: got %+v, %v want of b1-100 by same_role", got, err)
	}
	rec := repost
	rec.Kind, rec.Job.ID = jobevent.Updated, got.Of
	res := record(t, s, t0.Add(time.Hour/2), jobevent.Matched{Event: rec, SubscriptionIDs: []string{a.ID, late.ID}})
	if res[0].Recorded != 1 {
		t.Fatalf("repost recorded: got %d items want 1 (the late subscription only)", res[0].Recorded)
	}
	if got := len(pending(t, s, a.ID)); got != 1 {
		t.Errorf("original's subscriber: got %d pending want 1", got)
	}
	if got := len(pending(t, s, late.ID)); got != 1 {
		t.Errorf("late subscriber: got %d pending want 1", got)
	}
	jobs, err := s.Jobs(ctx, late.ID, []int64{res[0].Seq})
	if err != nil || len(jobs) != 1 || !strings.Contains(string(jobs[0].Data), `"url":"https://board.example/200"`) {
		t.Errorf("job data: got %+v, %v want the newest posting's url", jobs, err)
	}

	// Redelivery, an update and a close of the repost's id map to b1-100.
	for _, k := range []jobevent.Kind{jobevent.Created, jobevent.Updated, jobevent.Closed} {
		e := repost
		e.Kind = k
		if got, err := s.ResolveRepostAt(ctx, e, time.Hour, t0.Add(time.Hour)); err != nil || got.Of != "b1-100" {
			t.Errorf("%s of the repost's id: got %+v, %v want of b1-100", k, got, err)
		}
	}
	info, err := s.RepostLookup(ctx, "b1-200")
	if err != nil || info.Of != "b1-100" || info.Reason != jobevent.RepostSameRole || !info.Closed {
		t.Errorf("lookup: got %+v, %v want of b1-100, same_role, closed", info, err)
	}
	// The role is posted again after its close: a new job.
	again := orig
	again.Job.ID = "b1-300"
	if got, err := s.ResolveRepostAt(ctx, again, time.Hour, t0.Add(2*time.Hour)); err != nil || got.Of != "b1-300" {
		t.Errorf("posted again after the close: got %+v, %v want a job of its own", got, err)
	}
	// Window 0: a new id is its own job.
	off := orig
	off.Job.ID = "b1-400"
	if got, err := s.ResolveRepostAt(ctx, off, 0, t0.Add(2*time.Hour)); err != nil || got.Of != "b1-400" {
		t.Errorf("window 0: got %+v, %v want a job of its own", got, err)
	}
}

func TestRepostAliases(t *testing.T) {
	a := store.RepostAliases(&matcher.Job{Company: " ACME ", Title: "Back-End Engineer!", Locations: []string{"Seattle ,  WA", "Austin"},
		URL: "HTTPS://Board.Example/jobs/1/?utm_source=feed&ref=2#top", CanonicalID: "r1"})
	want := map[jobevent.RepostReason]string{
		jobevent.RepostCanonicalID: "r1",
		jobevent.RepostApplyURL:    "https://board.example/jobs/1?ref=2",
		jobevent.RepostSameRole:    "acme\x00backend engineer\x00seattle,wa",
	}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("alias %s: got %q want %q", k, a[k], v)
		}
	}
}

// Consumers resolving batches at once (replicas, two batches in flight)
// agree: every posting of one role ends up under one job, whoever won
// each alias.
func TestRepostsResolvedConcurrently(t *testing.T) {
	ctx := context.Background()
	s := mustRepostStore(t)
	roles := []string{"Backend Engineer", "Data Engineer", "SRE", "Designer"}
	const workers, perWorker = 4, 40
	got := make([][]jobevent.Repost, workers)
	evs := make([][]jobevent.Event, workers)
	var wg sync.WaitGroup
	for w := range workers {
		for i := range perWorker {
			role := roles[(w+i)%len(roles)]
			evs[w] = append(evs[w], jobevent.Event{Kind: jobevent.Created, Job: matcher.Job{
				ID: fmt.Sprintf("w%d-%d", w, i), Title: role, Company: "Acme", Locations: []string{"Seattle, WA"}}})
		}
		wg.Go(func() {
			for b := 0; b < perWorker; b += 5 {
				r, err := s.ResolveRepostsAt(ctx, evs[w][b:b+5], time.Hour, t0)
				if err != nil {
					t.Error(err)
					return
				}
				got[w] = append(got[w], r...)
			}
		})
	}
	wg.Wait()
	of := map[string]string{} // role -> the job its postings are
	for w := range workers {
		for i, r := range got[w] {
			role := evs[w][i].Job.Title
			if of[role] == "" {
				of[role] = r.Of
			}
			if r.Of != of[role] {
				t.Errorf("%s (%s): got of %q, another posting of the role got %q", evs[w][i].Job.ID, role, r.Of, of[role])
			}
		}
	}
	if len(of) != len(roles) {
		t.Errorf("got %d jobs for %d roles", len(of), len(roles))
	}
}
