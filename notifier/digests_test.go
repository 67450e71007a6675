package notifier_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/wneessen/go-mail"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/smtpsink"
	"github.com/jobalert/jobalert/store"
)

// The digest tests drive Digester.RunDue with explicit instants (as the
// admin endpoint does) against a real redis-server, the real Renderer and
// Mailer, and the in-process SMTP sink. Due-ness follows the instant given;
// leases, retry times and SendOutbox follow the digesters' clock, a fake one
// (digestEnv.clock) that stands still until the test moves it.

var (
	losAngeles = loadZone("America/Los_Angeles")
	newYork    = loadZone("America/New_York")
)

func loadZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic("time zone data missing: " + err.Error())
	}
	return loc
}

// testLinks makes the per-subscription URLs without tokens.
type testLinks struct{}

func (testLinks) Unsubscribe(subID string) string {
	return "https://jobalert.test/v1/unsubscribe?token=" + subID
}
func (testLinks) Manage(subID string, _ int) string {
	return "https://jobalert.test/manage?token=" + subID
}
func (testLinks) Channel(subID, ch string) string {
	return "https://jobalert.test/v1/channel?token=" + ch + "-" + subID
}
func (testLinks) ChannelStop(subID, ch string) string {
	return "https://jobalert.test/v1/channel/stop?token=" + ch + "-" + subID
}

// digestEnv is one Redis key space, one SMTP sink and one clock that any
// number of digesters ("replicas", or one process before and after a
// restart) share.
type digestEnv struct {
	t      *testing.T
	rdb    redis.UniversalClient
	prefix string
	sink   *smtpsink.Sink
	st     *store.Redis // the store the test itself writes through
	scfg   store.Config
	clock  *clock.Fake // the digesters' clock
}

func newDigestEnv(t *testing.T) *digestEnv {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	e := &digestEnv{t: t, rdb: rdb, prefix: prefix, sink: mustSink(t),
		scfg:  store.Config{Prefix: prefix, InstantWindow: time.Minute},
		clock: clock.NewFake(time.Now().Truncate(time.Second))}
	e.st = store.New(rdb, e.scfg)
	return e
}

// digester returns a new Digester with its own store and mailer on the
// shared Redis and sink, and the shared clock, as another replica or a
// restarted process has.
func (e *digestEnv) digester(cfg notifier.DigestConfig) *notifier.Digester {
	e.t.Helper()
	return e.digesterSending(cfg, nil)
}

// digesterSending is digester with its mailer wrapped by wrap, when not nil.
func (e *digestEnv) digesterSending(cfg notifier.DigestConfig, wrap func(notifier.Sender) notifier.Sender) *notifier.Digester {
	e.t.Helper()
	st := store.New(e.rdb, e.scfg)
	var m notifier.Sender = mustMailer(e.t, e.sink, notifier.MailerConfig{Pool: 2})
	if wrap != nil {
		m = wrap(m)
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 20 * time.Millisecond
	}
	if cfg.Clock == nil {
		cfg.Clock = e.clock
	}
	return notifier.NewDigester(st, mustRenderer(e.t, "https://jobalert.test"), m, nil, testLinks{}, cfg,
		slog.New(slog.DiscardHandler), nil)
}

// slowSender is a Sender whose every send takes d on the test's clock.
type slowSender struct {
	notifier.Sender
	clock *clock.Fake
	d     time.Duration
}

func (s slowSender) Send(ctx context.Context, msg *mail.Msg) error {
	err := s.Sender.Send(ctx, msg)
	s.clock.Advance(s.d)
	return err
}

func (e *digestEnv) subscribe(email string, spec schedule.Spec, now time.Time) *store.Subscription {
	e.t.Helper()
	sub := &store.Subscription{Email: email, Filter: matcher.Filter{Keywords: "backend engineer"},
		Frequency: spec.Frequency, Timezone: spec.Timezone, SendHour: spec.SendHour, WeeklyDay: spec.WeeklyDay,
		Status: store.StatusActive}
	if err := e.st.CreateSubscription(context.Background(), sub, now); err != nil {
		e.t.Fatalf("create subscription: %v", err)
	}
	return sub
}

func (e *digestEnv) update(id string, now time.Time, change func(*store.Subscription)) {
	e.t.Helper()
	_, err := e.st.UpdateSubscription(context.Background(), id, now, func(s *store.Subscription) error {
		change(s)
		return nil
	})
	if err != nil {
		e.t.Fatalf("update subscription: %v", err)
	}
}

// event records one job event and its matches, as the consumer does.
func (e *digestEnv) event(now time.Time, kind jobevent.Kind, j matcher.Job, subs ...string) {
	e.t.Helper()
	_, err := e.st.RecordResults(context.Background(), []jobevent.Matched{
		{Event: jobevent.Event{Kind: kind, Job: j}, SubscriptionIDs: subs}}, now)
	if err != nil {
		e.t.Fatalf("record: %v", err)
	}
}

func (e *digestEnv) match(now time.Time, j matcher.Job, subs ...*store.Subscription) {
	e.t.Helper()
	ids := make([]string, len(subs))
	for i, s := range subs {
		ids[i] = s.ID
	}
	e.event(now, jobevent.Created, j, ids...)
}

func (e *digestEnv) pending(sub *store.Subscription) int64 {
	e.t.Helper()
	n, err := e.st.PendingCount(context.Background(), sub.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// run calls RunDue at now and checks what it reports.
func run(t *testing.T, d *notifier.Digester, now time.Time, want notifier.RunResult) {
	t.Helper()
	got, err := d.RunDue(context.Background(), now)
	if err != nil {
		t.Fatalf("RunDue(%v): %v", now, err)
	}
	if got != want {
		t.Fatalf("RunDue(%v): got %+v, want %+v", now, got, want)
	}
}

func mails(e *digestEnv, addr string) []smtpsink.Message { return e.sink.To(addr) }

func wantMails(t *testing.T, e *digestEnv, addr string, n int) []smtpsink.Message {
	t.Helper()
	got := e.sink.To(addr)
	if len(got) != n {
		t.Fatalf("emails to %s: got %d, want %d", addr, len(got), n)
	}
	return got
}

func newJob(id, title string) matcher.Job {
	return matcher.Job{ID: id, Title: title, Company: "Starbucks", Locations: []string{"Seattle, WA, US"},
		Workplace: "hybrid", VisaTypes: []string{"H-1B"}, URL: "https://jobs.example.com/" + id,
		Salary: &matcher.Salary{Min: 115000, Max: 160000, Currency: "USD", Period: "year"}}
}

// listed reports which of the job ids an email lists (by their URL).
func listed(m smtpsink.Message, ids ...string) []string {
	var out []string
	for _, id := range ids {
		if strings.Contains(text(m)+"\n", "https://jobs.example.com/"+id+"\n") {
			out = append(out, id)
		}
	}
	return out
}

// text is the plain-text part with LF line ends.
func text(m smtpsink.Message) string { return strings.ReplaceAll(m.Text, "\r\n", "\n") }

func wantListed(t *testing.T, m smtpsink.Message, want []string, notWant ...string) {
	t.Helper()
	if got := listed(m, want...); len(got) != len(want) {
		t.Errorf("email lists %v of %v; text:\n%s", got, want, m.Text)
	}
	if got := listed(m, notWant...); len(got) != 0 {
		t.Errorf("email lists %v, which it must not; text:\n%s", got, m.Text)
	}
}

func TestDailyAtLocalHour(t *testing.T) {
	e := newDigestEnv(t)
	d := e.digester(notifier.DigestConfig{})
	day := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, losAngeles) }
	sub := e.subscribe("ada@example.com", schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}, day(1, 6, 0))
	e.match(day(1, 6, 30), newJob("j1", "Backend Engineer"), sub)

	run(t, d, day(1, 7, 59), notifier.RunResult{})
	wantMails(t, e, "ada@example.com", 0)
	run(t, d, day(1, 8, 0), notifier.RunResult{Sent: 1})
	m := wantMails(t, e, "ada@example.com", 1)[0]
	wantListed(t, m, []string{"j1"})
	if want := `1 new "backend engineer" job`; m.Subject != want {
		t.Errorf("subject: got %q, want %q", m.Subject, want)
	}
	run(t, d, day(1, 8, 1), notifier.RunResult{})
	run(t, d, day(1, 23, 59), notifier.RunResult{})
	wantMails(t, e, "ada@example.com", 1)

	// The next day nothing is pending: nothing is sent, and it is counted.
	run(t, d, day(2, 8, 0), notifier.RunResult{SkippedEmpty: 1})
	wantMails(t, e, "ada@example.com", 1)
	// And the day after, a new match goes out at 08:00 again.
	e.match(day(2, 12, 0), newJob("j2", "Backend Engineer II"), sub)
	run(t, d, day(3, 7, 59), notifier.RunResult{})
	run(t, d, day(3, 8, 0), notifier.RunResult{Sent: 1})
	wantListed(t, wantMails(t, e, "ada@example.com", 2)[1], []string{"j2"}, "j1")
}

func TestWeeklyOnItsDay(t *testing.T) {
	e := newDigestEnv(t)
	d := e.digester(notifier.DigestConfig{})
	at := func(d, h int) time.Time { return time.Date(2026, 12, d, h, 0, 0, 0, losAngeles) }
	// 2026-12-02 is a Wednesday; the subscriber wants Mondays at 08:00.
	sub := e.subscribe("ada@example.com", schedule.Spec{Frequency: "weekly", Timezone: "America/Los_Angeles", SendHour: 8, WeeklyDay: "monday"}, at(2, 9))
	e.match(at(2, 10), newJob("j1", "Backend Engineer"), sub)
	for day := 2; day <= 6; day++ { // Wednesday .. Sunday
		run(t, d, at(day, 8), notifier.RunResult{})
		run(t, d, at(day, 23), notifier.RunResult{})
	}
	wantMails(t, e, "ada@example.com", 0)
	e.match(at(6, 12), newJob("j2", "Backend Engineer II"), sub)
	run(t, d, at(7, 8), notifier.RunResult{Sent: 1}) // Monday
	wantListed(t, wantMails(t, e, "ada@example.com", 1)[0], []string{"j1", "j2"})
	e.match(at(7, 12), newJob("j3", "Backend Engineer III"), sub)
	for day := 8; day <= 13; day++ {
		run(t, d, at(day, 8), notifier.RunResult{})
	}
	run(t, d, at(14, 8), notifier.RunResult{Sent: 1}) // the next Monday
	wantListed(t, wantMails(t, e, "ada@example.com", 2)[1], []string{"j3"}, "j1", "j2")
}

func TestDSTNewYork(t *testing.T) {
	t.Run("spring forward: 02:00 is missing, sent at 03:00 EDT", func(t *testing.T) {
		e := newDigestEnv(t)
		d := e.digester(notifier.DigestConfig{})
		sub := e.subscribe("ada@example.com", schedule.Spec{Frequency: "daily", Timezone: "America/New_York", SendHour: 2},
			time.Date(2026, 3, 7, 12, 0, 0, 0, newYork))
		e.match(time.Date(2026, 3, 7, 13, 0, 0, 0, newYork), newJob("j1", "Backend Engineer"), sub)
		gapEnd := time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC) // 01:59:59 EST is followed by 03:00 EDT
		run(t, d, gapEnd.Add(-time.Millisecond), notifier.RunResult{})
		run(t, d, gapEnd, notifier.RunResult{Sent: 1})
		run(t, d, gapEnd.Add(time.Hour), notifier.RunResult{})
		wantMails(t, e, "ada@example.com", 1)
		// The day after, 02:00 EDT exists again.
		e.match(time.Date(2026, 3, 8, 12, 0, 0, 0, newYork), newJob("j2", "Backend Engineer II"), sub)
		run(t, d, time.Date(2026, 3, 9, 1, 59, 0, 0, newYork), notifier.RunResult{})
		run(t, d, time.Date(2026, 3, 9, 2, 0, 0, 0, newYork), notifier.RunResult{Sent: 1})
		wantMails(t, e, "ada@example.com", 2)
	})
	t.Run("fall back: 01:00 twice, sent once", func(t *testing.T) {
		e := newDigestEnv(t)
		d := e.digester(notifier.DigestConfig{})
		sub := e.subscribe("ada@example.com", schedule.Spec{Frequency: "daily", Timezone: "America/New_York", SendHour: 1},
			time.Date(2026, 10, 31, 12, 0, 0, 0, newYork))
		e.match(time.Date(2026, 10, 31, 13, 0, 0, 0, newYork), newJob("j1", "Backend Engineer"), sub)
		firstOne := time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC) // 01:00 EDT
		secondOne := firstOne.Add(time.Hour)                     // 01:00 EST
		run(t, d, firstOne.Add(-time.Millisecond), notifier.RunResult{})
		run(t, d, firstOne, notifier.RunResult{Sent: 1})
		// A job matched between the two 01:00s waits for the next day.
		e.match(firstOne.Add(30*time.Minute), newJob("j2", "Backend Engineer II"), sub)
		run(t, d, secondOne, notifier.RunResult{})
		run(t, d, secondOne.Add(30*time.Minute), notifier.RunResult{})
		wantMails(t, e, "ada@example.com", 1)
		run(t, d, time.Date(2026, 11, 2, 0, 59, 0, 0, newYork), notifier.RunResult{})
		run(t, d, time.Date(2026, 11, 2, 1, 0, 0, 0, newYork), notifier.RunResult{Sent: 1})
		wantListed(t, wantMails(t, e, "ada@example.com", 2)[1], []string{"j2"}, "j1")
	})
}

func TestRestart(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 12, 1, h, 0, 0, 0, losAngeles) }
	spec := schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}
	t.Run("between match and send", func(t *testing.T) {
		e := newDigestEnv(t)
		before := e.digester(notifier.DigestConfig{})
		sub := e.subscribe("ada@example.com", spec, at(6))
		e.match(at(7), newJob("j1", "Backend Engineer"), sub)
		run(t, before, at(7), notifier.RunResult{})
		// The process stops; a new one starts on the same Redis.
		after := e.digester(notifier.DigestConfig{})
		run(t, after, at(8), notifier.RunResult{Sent: 1})
		run(t, after, at(9), notifier.RunResult{})
		if r := after.SendOutbox(context.Background()); r != (notifier.RunResult{}) {
			t.Errorf("SendOutbox after the send: got %+v, want nothing", r)
		}
		wantListed(t, wantMails(t, e, "ada@example.com", 1)[0], []string{"j1"})
	})
	t.Run("between claim and send: the lease runs out and another takes over", func(t *testing.T) {
		e := newDigestEnv(t)
		sub := e.subscribe("ada@example.com", spec, at(6))
		e.match(at(7), newJob("j1", "Backend Engineer"), sub)
		// A replica claims the digest and dies before sending it.
		ctx := context.Background()
		due, err := e.st.DueAt(ctx, at(8), 10)
		if err != nil || len(due) != 1 {
			t.Fatalf("DueAt: got %v, %v, want one", due, err)
		}
		leaseEnd := e.clock.Now().Add(300 * time.Millisecond)
		res, err := e.st.ClaimDue(ctx, []store.Claim{{Due: due[0], Next: spec.Next(due[0].At, at(8)),
			DigestID: store.DigestID(sub.ID, due[0].At), LeaseUntil: leaseEnd}}, at(8))
		if err != nil || len(res) != 1 || res[0] != store.Claimed {
			t.Fatalf("ClaimDue: got %v, %v, want claimed", res, err)
		}
		other := e.digester(notifier.DigestConfig{Lease: time.Minute})
		run(t, other, at(8), notifier.RunResult{}) // claimed already: nothing due
		if r := other.SendOutbox(ctx); r != (notifier.RunResult{}) {
			t.Fatalf("SendOutbox while the lease holds: got %+v, want nothing", r)
		}
		e.clock.Set(leaseEnd.Add(-time.Millisecond))
		if r := other.SendOutbox(ctx); r != (notifier.RunResult{}) {
			t.Fatalf("SendOutbox a millisecond before the lease ends: got %+v, want nothing", r)
		}
		e.clock.Set(leaseEnd)
		if r := other.SendOutbox(ctx); r != (notifier.RunResult{Sent: 1}) {
			t.Fatalf("SendOutbox once the lease has ended: got %+v, want the digest taken over and sent", r)
		}
		if r := other.SendOutbox(ctx); r != (notifier.RunResult{}) {
			t.Errorf("SendOutbox after the takeover: got %+v, want nothing", r)
		}
		run(t, other, at(9), notifier.RunResult{})
		wantListed(t, wantMails(t, e, "ada@example.com", 1)[0], []string{"j1"})
	})
}

func TestReplicasRace(t *testing.T) {
	e := newDigestEnv(t)
	spec := schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}
	const n, days = 24, 3
	var subs []*store.Subscription
	start := time.Date(2026, 12, 1, 6, 0, 0, 0, losAngeles)
	for i := range n {
		subs = append(subs, e.subscribe(fmt.Sprintf("u%02d@example.com", i), spec, start))
	}
	// Small batches and many workers interleave the two replicas' claims.
	cfg := notifier.DigestConfig{Batch: 5, Workers: 4}
	replicas := []*notifier.Digester{e.digester(cfg), e.digester(cfg)}
	for day := range days {
		now := time.Date(2026, 12, 1+day, 8, 0, 0, 0, losAngeles)
		e.match(now.Add(-time.Hour), newJob(fmt.Sprintf("d%d", day), "Backend Engineer"), subs...)
		results := make([]notifier.RunResult, len(replicas))
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i, d := range replicas {
			wg.Go(func() {
				<-gate
				r, err := d.RunDue(context.Background(), now)
				if err != nil {
					t.Errorf("replica %d: RunDue: %v", i, err)
				}
				results[i] = r
			})
		}
		close(gate)
		wg.Wait()
		if got := results[0].Sent + results[1].Sent; got != n {
			t.Fatalf("day %d: replicas sent %d + %d digests, want %d in all", day, results[0].Sent, results[1].Sent, n)
		}
		t.Logf("day %d: replica results %+v %+v", day, results[0], results[1])
	}
	for i := range n {
		addr := fmt.Sprintf("u%02d@example.com", i)
		got := mails(e, addr)
		if len(got) != days {
			t.Fatalf("%s got %d emails, want %d (one a day)", addr, len(got), days)
		}
		for day, m := range got {
			wantListed(t, m, []string{fmt.Sprintf("d%d", day)})
		}
	}
}

func TestDowntime(t *testing.T) {
	e := newDigestEnv(t)
	d := e.digester(notifier.DigestConfig{})
	at := func(day, h int) time.Time { return time.Date(2026, 12, day, h, 0, 0, 0, losAngeles) }
	sub := e.subscribe("ada@example.com", schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}, at(1, 6))
	// Nothing runs from Dec 1 06:00 to Dec 4 10:00; jobs keep matching.
	for day := 1; day <= 4; day++ {
		e.match(at(day, 7), newJob(fmt.Sprintf("j%d", day), "Backend Engineer"), sub)
	}
	run(t, d, at(4, 10), notifier.RunResult{Sent: 1})
	run(t, d, at(4, 11), notifier.RunResult{})
	m := wantMails(t, e, "ada@example.com", 1)[0]
	wantListed(t, m, []string{"j1", "j2", "j3", "j4"})
	if !strings.HasPrefix(m.Subject, "4 new ") {
		t.Errorf("subject: got %q, want 4 new ...", m.Subject)
	}
	if i1, i4 := strings.Index(text(m), "/j1\n"), strings.Index(text(m), "/j4\n"); i4 > i1 {
		t.Errorf("want newest first (j4 before j1):\n%s", m.Text)
	}
	// The schedule resumes at the next 08:00, not once per missed day.
	run(t, d, at(5, 7), notifier.RunResult{})
	run(t, d, at(5, 8), notifier.RunResult{SkippedEmpty: 1})
	wantMails(t, e, "ada@example.com", 1)
}

func TestCapAndMore(t *testing.T) {
	for _, tc := range []struct {
		jobs     int
		wantMore string
	}{
		{25, ""},
		{30, "And 5 more jobs: https://jobalert.test/manage?token="},
		// Past the store's pending limit (100) the oldest are counted,
		// not kept: 110 = 25 listed + 75 kept + 10 counted.
		{110, "And 85 more jobs: https://jobalert.test/manage?token="},
	} {
		t.Run(fmt.Sprint(tc.jobs), func(t *testing.T) {
			e := newDigestEnv(t)
			d := e.digester(notifier.DigestConfig{})
			at := func(h int) time.Time { return time.Date(2026, 12, 1, h, 0, 0, 0, losAngeles) }
			sub := e.subscribe("ada@example.com", schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}, at(6))
			batch := make([]jobevent.Matched, tc.jobs)
			for i := range batch {
				batch[i] = jobevent.Matched{Event: jobevent.Event{Kind: jobevent.Created,
					Job: newJob(fmt.Sprintf("c%03d", i), fmt.Sprintf("Backend Engineer %03d", i))}, SubscriptionIDs: []string{sub.ID}}
			}
			if _, err := e.st.RecordResults(context.Background(), batch, at(7)); err != nil {
				t.Fatal(err)
			}
			run(t, d, at(8), notifier.RunResult{Sent: 1})
			m := wantMails(t, e, "ada@example.com", 1)[0]
			if want := fmt.Sprintf(`%d new "backend engineer" jobs`, tc.jobs); m.Subject != want {
				t.Errorf("subject: got %q, want %q", m.Subject, want)
			}
			shown := 0
			for i := range tc.jobs {
				if strings.Contains(text(m), fmt.Sprintf("/c%03d\n", i)) {
					shown++
				}
			}
			if shown != min(tc.jobs, 25) {
				t.Errorf("jobs listed: got %d, want %d", shown, min(tc.jobs, 25))
			}
			// Newest first: the last matched is listed first.
			if want := fmt.Sprintf("1. Backend Engineer %03d", tc.jobs-1); !strings.Contains(m.Text, want) {
				t.Errorf("want %q first in:\n%s", want, m.Text)
			}
			if tc.wantMore == "" {
				if strings.Contains(m.Text, "more job") {
					t.Errorf("no \"more\" wanted:\n%s", m.Text)
				}
			} else if !strings.Contains(m.Text, tc.wantMore) || !strings.Contains(m.HTML, strings.Fields(tc.wantMore)[1]) {
				t.Errorf("want %q in:\n%s", tc.wantMore, m.Text)
			}
			run(t, d, time.Date(2026, 12, 2, 8, 0, 0, 0, losAngeles), notifier.RunResult{SkippedEmpty: 1})
		})
	}
}

func TestClosedAndUpdatedJobs(t *testing.T) {
	e := newDigestEnv(t)
	d := e.digester(notifier.DigestConfig{})
	at := func(day, h, m int) time.Time { return time.Date(2026, 12, day, h, m, 0, 0, losAngeles) }
	sub := e.subscribe("ada@example.com", schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}, at(1, 6, 0))
	e.match(at(1, 7, 0), newJob("open", "Backend Engineer"), sub)
	e.match(at(1, 7, 1), newJob("closed", "Backend Engineer (closed)"), sub)
	e.match(at(1, 7, 2), newJob("upd", "Backend Engineer v1"), sub)
	e.event(at(1, 7, 10), jobevent.Closed, matcher.Job{ID: "closed"})
	e.event(at(1, 7, 20), jobevent.Updated, newJob("upd", "Backend Engineer v2"), sub.ID)
	e.event(at(1, 7, 30), jobevent.Updated, newJob("upd", "Backend Engineer v3"), sub.ID)
	// A closed job that is then "updated" stays closed.
	e.event(at(1, 7, 40), jobevent.Updated, newJob("closed", "Backend Engineer (reopened?)"), sub.ID)

	run(t, d, at(1, 8, 0), notifier.RunResult{Sent: 1})
	m := wantMails(t, e, "ada@example.com", 1)[0]
	wantListed(t, m, []string{"open", "upd"}, "closed")
	if strings.Count(text(m), "/upd\n") != 1 || !strings.Contains(m.Text, "Backend Engineer v3") ||
		strings.Contains(m.Text, "Engineer v1") || strings.Contains(m.Text, "Engineer v2") {
		t.Errorf("want the updated job once with its newest title (v3):\n%s", m.Text)
	}
	if !strings.HasPrefix(m.Subject, "2 new ") {
		t.Errorf("subject: got %q, want 2 new ...", m.Subject)
	}

	// Updated again after the digest covered it: not sent again.
	e.event(at(1, 9, 0), jobevent.Updated, newJob("upd", "Backend Engineer v4"), sub.ID)
	if n := e.pending(sub); n != 0 {
		t.Errorf("pending after an update of a sent job: got %d, want 0", n)
	}
	// Everything pending closed before the send: no email.
	e.match(at(1, 10, 0), newJob("gone", "Backend Engineer"), sub)
	e.event(at(1, 11, 0), jobevent.Closed, matcher.Job{ID: "gone"})
	run(t, d, at(2, 8, 0), notifier.RunResult{SkippedEmpty: 1})
	wantMails(t, e, "ada@example.com", 1)
}

func TestFrequencySwitchKeepsPending(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 12, 1, h, m, 0, 0, losAngeles) }
	spec := schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}
	setFreq := func(f string) func(*store.Subscription) { return func(s *store.Subscription) { s.Frequency = f } }

	t.Run("back to daily before the instant window closes", func(t *testing.T) {
		e := newDigestEnv(t)
		d := e.digester(notifier.DigestConfig{})
		sub := e.subscribe("ada@example.com", spec, at(5, 0))
		e.match(at(5, 10), newJob("a", "Backend Engineer A"), sub)
		e.match(at(5, 20), newJob("b", "Backend Engineer B"), sub)
		e.update(sub.ID, at(6, 0), setFreq("instant"))
		e.match(at(6, 0), newJob("c", "Backend Engineer C"), sub)
		e.update(sub.ID, at(6, 0), setFreq("daily"))
		if n := e.pending(sub); n != 3 {
			t.Fatalf("pending after the switches: got %d, want 3", n)
		}
		run(t, d, at(6, 5), notifier.RunResult{}) // the window would have closed
		run(t, d, at(8, 0), notifier.RunResult{Sent: 1})
		wantListed(t, wantMails(t, e, "ada@example.com", 1)[0], []string{"a", "b", "c"})
		run(t, d, time.Date(2026, 12, 2, 8, 0, 0, 0, losAngeles), notifier.RunResult{SkippedEmpty: 1})
	})
	t.Run("the instant window sends what waited, daily the rest", func(t *testing.T) {
		e := newDigestEnv(t)
		d := e.digester(notifier.DigestConfig{})
		sub := e.subscribe("ada@example.com", spec, at(5, 0))
		e.match(at(5, 10), newJob("a", "Backend Engineer A"), sub)
		e.match(at(5, 20), newJob("b", "Backend Engineer B"), sub)
		e.update(sub.ID, at(6, 0), setFreq("instant"))
		run(t, d, at(6, 0), notifier.RunResult{})
		run(t, d, at(6, 1), notifier.RunResult{Sent: 1}) // the 1 m window
		e.match(at(6, 10), newJob("c", "Backend Engineer C"), sub)
		run(t, d, at(6, 11), notifier.RunResult{Sent: 1})
		e.match(at(6, 20), newJob("d", "Backend Engineer D"), sub)
		e.update(sub.ID, at(6, 20), setFreq("daily"))
		e.match(at(6, 30), newJob("e", "Backend Engineer E"), sub)
		run(t, d, at(6, 22), notifier.RunResult{})
		run(t, d, at(8, 0), notifier.RunResult{Sent: 1})
		got := wantMails(t, e, "ada@example.com", 3)
		all := []string{"a", "b", "c", "d", "e"}
		for i, want := range [][]string{{"a", "b"}, {"c"}, {"d", "e"}} {
			var notWant []string
			for _, id := range all {
				if !strings.Contains(strings.Join(want, ","), id) {
					notWant = append(notWant, id)
				}
			}
			wantListed(t, got[i], want, notWant...)
		}
	})
}

func TestSMTPTemporaryFailureRetried(t *testing.T) {
	for _, stage := range []smtpsink.Stage{smtpsink.StageMail, smtpsink.StageData} {
		t.Run(stage.String(), func(t *testing.T) {
			e := newDigestEnv(t)
			d := e.digester(notifier.DigestConfig{RetryBase: 20 * time.Millisecond})
			at := func(h int) time.Time { return time.Date(2026, 12, 1, h, 0, 0, 0, losAngeles) }
			sub := e.subscribe("ada@example.com", schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}, at(6))
			e.match(at(7), newJob("j1", "Backend Engineer"), sub)
			e.sink.FailNext(stage, 421, 1)

			run(t, d, at(8), notifier.RunResult{Deferred: 1})
			wantMails(t, e, "ada@example.com", 0)
			if n, _ := e.st.OutboxLen(context.Background()); n != 1 {
				t.Fatalf("outbox: got %d, want the deferred digest", n)
			}
			if r := d.SendOutbox(context.Background()); r != (notifier.RunResult{}) {
				t.Fatalf("SendOutbox before the retry time: got %+v, want nothing", r)
			}
			// The first retry comes after half to the whole RetryBase.
			e.clock.Advance(20 * time.Millisecond)
			if r := d.SendOutbox(context.Background()); r != (notifier.RunResult{Sent: 1}) {
				t.Fatalf("SendOutbox at the retry time: got %+v, want the deferred digest sent", r)
			}
			// Later runs and retries send nothing more, even past any
			// retry time or lease.
			e.clock.Advance(time.Hour)
			if r := d.SendOutbox(context.Background()); r != (notifier.RunResult{}) {
				t.Errorf("SendOutbox after delivery: got %+v, want nothing", r)
			}
			run(t, d, at(9), notifier.RunResult{})
			wantListed(t, wantMails(t, e, "ada@example.com", 1)[0], []string{"j1"})
			if st := e.sink.Stats(); st.Rejected != 1 || st.Messages != 1 {
				t.Errorf("sink stats: got %+v, want 1 rejected, 1 accepted", st)
			}
			if n, _ := e.st.OutboxLen(context.Background()); n != 0 {
				t.Errorf("outbox after delivery: got %d, want 0", n)
			}
		})
	}
}

func TestSMTPHardBounceSuppresses(t *testing.T) {
	e := newDigestEnv(t)
	d := e.digester(notifier.DigestConfig{})
	ctx := context.Background()
	at := func(day, h int) time.Time { return time.Date(2026, 12, day, h, 0, 0, 0, losAngeles) }
	spec := schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}
	ada := e.subscribe("ada@example.com", spec, at(1, 6))
	bob := e.subscribe("bob@example.com", spec, at(1, 6))
	bob2 := e.subscribe("Bob@Example.com", schedule.Spec{Frequency: "weekly", Timezone: "UTC", SendHour: 9, WeeklyDay: "friday"}, at(1, 6))
	cyd := e.subscribe("cyd@example.com", spec, at(1, 6))
	e.sink.RejectRecipients(550, "bob@example.com")
	e.match(at(1, 7), newJob("j1", "Backend Engineer"), ada, bob, bob2, cyd)

	run(t, d, at(1, 8), notifier.RunResult{Sent: 2})
	wantMails(t, e, "ada@example.com", 1)
	wantMails(t, e, "cyd@example.com", 1)
	wantMails(t, e, "bob@example.com", 0)
	if ok, err := e.st.IsSuppressed(ctx, "bob@example.com"); err != nil || !ok {
		t.Errorf("IsSuppressed(bob): got %v, %v, want true", ok, err)
	}
	for _, who := range []string{"ada@example.com", "cyd@example.com"} {
		if ok, _ := e.st.IsSuppressed(ctx, who); ok {
			t.Errorf("IsSuppressed(%s): got true, want false", who)
		}
	}
	for _, s := range []*store.Subscription{bob, bob2} {
		got, err := e.st.GetSubscription(ctx, s.ID)
		if err != nil || got.Status != store.StatusSuppressed {
			t.Errorf("subscription %s of %s: got %+v, %v, want status suppressed", s.ID, s.Email, got, err)
		}
	}
	if got, _ := e.st.GetSubscription(ctx, ada.ID); got.Status != store.StatusActive {
		t.Errorf("ada's subscription: got status %s, want active", got.Status)
	}
	// Bob's subscriptions stop: a match recorded in the second before the
	// change reached the index is dropped at the claim, never sent.
	e.match(at(1, 9), newJob("j2", "Backend Engineer II"), ada, bob, bob2, cyd)
	run(t, d, at(2, 8), notifier.RunResult{Sent: 2})
	if n := e.pending(bob); n != 0 {
		t.Errorf("bob pending: got %d, want 0", n)
	}
	run(t, d, at(8, 8), notifier.RunResult{SkippedEmpty: 2})
	wantMails(t, e, "bob@example.com", 0)
	wantMails(t, e, "ada@example.com", 2)
	if n, _ := e.st.OutboxLen(ctx); n != 0 {
		t.Errorf("outbox: got %d, want 0", n)
	}
}

// TestSlowSMTPDoesNotOutliveTheLease: a replica that claimed a batch but
// is slowed down by the SMTP server leaves the digests it has not started
// while its lease is running out to the outbox, instead of sending them
// after another replica took them over.
func TestSlowSMTPDoesNotOutliveTheLease(t *testing.T) {
	e := newDigestEnv(t)
	ctx := context.Background()
	spec := schedule.Spec{Frequency: "daily", Timezone: "America/Los_Angeles", SendHour: 8}
	at := func(h int) time.Time { return time.Date(2026, 12, 1, h, 0, 0, 0, losAngeles) }
	const n = 4
	var subs []*store.Subscription
	for i := range n {
		subs = append(subs, e.subscribe(fmt.Sprintf("s%d@example.com", i), spec, at(6)))
	}
	e.match(at(7), newJob("j1", "Backend Engineer"), subs...)
	cfg := notifier.DigestConfig{Workers: 1, Lease: 400 * time.Millisecond}
	// Every send of the claiming replica takes 250 ms.
	slow := e.digesterSending(cfg, func(s notifier.Sender) notifier.Sender {
		return slowSender{Sender: s, clock: e.clock, d: 250 * time.Millisecond}
	})
	other := e.digester(cfg)

	leaseEnd := e.clock.Now().Add(cfg.Lease)
	// The first send starts with the whole lease left and ends with 150 ms
	// of it: less than half, so the other three are not started.
	run(t, slow, at(8), notifier.RunResult{Sent: 1, Deferred: n - 1})
	if r := other.SendOutbox(ctx); r != (notifier.RunResult{}) {
		t.Fatalf("the other replica while the lease holds: got %+v, want nothing", r)
	}
	e.clock.Set(leaseEnd)
	if r := other.SendOutbox(ctx); r != (notifier.RunResult{Sent: n - 1}) {
		t.Fatalf("the other replica once the lease has ended: got %+v, want the %d left sent", r, n-1)
	}
	// Leases and retry times long past: nothing is sent again.
	e.clock.Advance(time.Hour)
	for _, d := range []*notifier.Digester{slow, other} {
		if r := d.SendOutbox(ctx); r != (notifier.RunResult{}) {
			t.Errorf("SendOutbox after delivery: got %+v, want nothing", r)
		}
	}
	for i := range n {
		if got := len(mails(e, fmt.Sprintf("s%d@example.com", i))); got != 1 {
			t.Errorf("s%d got %d emails, want 1", i, got)
		}
	}
	if n, _ := e.st.OutboxLen(ctx); n != 0 {
		t.Errorf("outbox: got %d, want 0", n)
	}
}
