package notifier_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/smtpsink"
	"github.com/jobalert/jobalert/store"
)

// Regression tests for two duplicate paths the fault suite (faults/,
// scenarios 4 and 7) found: a Redis blip between the SMTP 250 and
// email_done, and a shutdown that cut sends short and left claimed
// digests leased.

// flakyMark is the real store whose MarkDigest fails the first fail calls,
// as when Redis restarts right after an email went out.
type flakyMark struct {
	*store.Redis
	fail  atomic.Int32
	calls atomic.Int32
}

func (f *flakyMark) MarkDigest(ctx context.Context, id, channel string) error {
	f.calls.Add(1)
	if f.fail.Add(-1) >= 0 {
		return errors.New("dial tcp: connection refused")
	}
	return f.Redis.MarkDigest(ctx, id, channel)
}

func instantSetup(t *testing.T) (*store.Redis, *smtpsink.Sink, *store.Subscription) {
	t.Helper()
	rdb, prefix := testenv.Redis(t)
	st := store.New(rdb, store.Config{Prefix: prefix, InstantWindow: time.Millisecond})
	sub := &store.Subscription{Email: "ada@example.com", Filter: matcher.Filter{Keywords: "backend"},
		Frequency: "instant", Timezone: "UTC", Status: store.StatusActive}
	if err := st.CreateSubscription(context.Background(), sub, time.Now()); err != nil {
		t.Fatal(err)
	}
	job := matcher.Job{ID: "j1", Title: "Backend Engineer", Company: "Acme", URL: "https://jobs.example.com/j1"}
	if _, err := st.RecordResults(context.Background(), []jobevent.Matched{
		{Event: jobevent.Event{Kind: jobevent.Created, Job: job}, SubscriptionIDs: []string{sub.ID}}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	return st, mustSink(t), sub
}

func TestEmailDoneWriteFailingAfterThe250IsRetriedNotResent(t *testing.T) {
	st, sink, _ := instantSetup(t)
	fs := &flakyMark{Redis: st}
	fs.fail.Store(2)
	clk := clock.NewFake(time.Now().Truncate(time.Second))
	d := notifier.NewDigester(fs, mustRenderer(t, "https://jobalert.test"), mustMailer(t, sink, notifier.MailerConfig{}),
		nil, testLinks{}, notifier.DigestConfig{RetryBase: 10 * time.Millisecond, Clock: clk}, slog.New(slog.DiscardHandler), nil)

	got, err := d.RunDue(context.Background(), time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if want := (notifier.RunResult{Sent: 1}); got != want {
		t.Fatalf("RunDue: got %+v, want %+v", got, want)
	}
	// Were the digest left in the outbox, this would send it again, once
	// its retry time or lease has come.
	clk.Advance(time.Hour)
	if r := d.SendOutbox(context.Background()); r != (notifier.RunResult{}) {
		t.Errorf("SendOutbox after the send: got %+v, want nothing", r)
	}
	if n := sink.Count(); n != 1 {
		t.Fatalf("emails: got %d, want 1", n)
	}
	if n := fs.calls.Load(); n != 3 {
		t.Errorf("MarkDigest calls: got %d, want 3 (two failures, then success)", n)
	}
	if n, _ := st.OutboxLen(context.Background()); n != 0 {
		t.Errorf("outbox: got %d digests, want 0", n)
	}
}

func TestShutdownLetsTheSendInProgressFinish(t *testing.T) {
	st, sink, sub := instantSetup(t)
	// The server takes 300 ms to accept the data: the shutdown comes
	// meanwhile.
	sink.StallNext(smtpsink.StageData, 300*time.Millisecond, 1)
	d := notifier.NewDigester(st, mustRenderer(t, "https://jobalert.test"), mustMailer(t, sink, notifier.MailerConfig{}),
		nil, testLinks{}, notifier.DigestConfig{Tick: 10 * time.Millisecond, ShutdownTimeout: 5 * time.Second},
		slog.New(slog.DiscardHandler), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	// Once the mailer has connected, the send is in progress (a digest
	// claimed but not yet started would be handed back instead).
	testenv.Eventually(t, 5*time.Second, func() bool { return sink.Stats().Connections == 1 }, "send not started")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := len(sink.To(sub.Email)); got != 1 {
		t.Fatalf("emails after shutdown: got %d, want the one in progress delivered", got)
	}
	if n, _ := st.OutboxLen(context.Background()); n != 0 {
		t.Errorf("outbox after shutdown: got %d, want 0 (the digest was sent and marked)", n)
	}
}
