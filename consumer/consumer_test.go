package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/testenv"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

const wait = 15 * time.Second // bound on every poll in these tests

// mustJetStream starts an embedded NATS server, creates the default
// streams and durable consumer on it, and returns a JetStream handle.
func mustJetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	nc := testenv.NATSConn(tb, testenv.NATS(tb))
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	if err := consumer.EnsureStreams(context.Background(), js, consumer.StreamConfig{}); err != nil {
		tb.Fatalf("EnsureStreams: %v", err)
	}
	return js
}

func publish(tb testing.TB, js jetstream.JetStream, subject, body string) uint64 {
	tb.Helper()
	ack, err := js.Publish(context.Background(), subject, []byte(body))
	if err != nil {
		tb.Fatalf("publish %s: %v", subject, err)
	}
	return ack.Sequence
}

func jobBody(id, title string) string {
	return fmt.Sprintf(`{"id":%q,"title":%q,"company":"Acme"}`, id, title)
}

// matchFunc is a Matcher: every job matches "sub-<id>", and "sub-all".
type matchFunc func(j *matcher.Job) []string

func (f matchFunc) MatchIDs(j *matcher.Job) []string { return f(j) }

func matchAll(j *matcher.Job) []string { return []string{"sub-" + j.ID, "sub-all"} }

// recorder is a fake Recorder that keeps the batches it accepted.
type recorder struct {
	mu      sync.Mutex
	batches [][]jobevent.Matched
	calls   int
	// hook, when set, runs first in every call; a non-nil error fails it.
	hook func(ctx context.Context, call int, batch []jobevent.Matched) error
}

func (r *recorder) Record(ctx context.Context, batch []jobevent.Matched) error {
	r.mu.Lock()
	r.calls++
	call := r.calls
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, call, batch); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, append([]jobevent.Matched(nil), batch...))
	return nil
}

// recorded returns every accepted event, in order.
func (r *recorder) recorded() []jobevent.Matched {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []jobevent.Matched
	for _, b := range r.batches {
		all = append(all, b...)
	}
	return all
}

func (r *recorder) count() int { return len(r.recorded()) }

// run starts c.Run in a goroutine; the returned stop cancels it and waits
// for Run to return (also at cleanup), failing if it takes over 5 s.
func run(tb testing.TB, c *consumer.Consumer) (stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				err = errors.New("Run did not return within 5s of cancel")
			}
		})
		return err
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Error(err)
		}
	})
	return stop
}

func fastConfig() consumer.Config {
	return consumer.Config{Batch: 16, MaxWait: 50 * time.Millisecond, NakDelay: 20 * time.Millisecond, MaxNakDelay: 100 * time.Millisecond}
}

func consumerInfo(tb testing.TB, js jetstream.JetStream) *jetstream.ConsumerInfo {
	tb.Helper()
	info, err := js.Consumer(context.Background(), consumer.DefaultStream, consumer.DefaultConsumer)
	if err != nil {
		tb.Fatalf("consumer: %v", err)
	}
	return info.CachedInfo()
}

// drained reports whether every message was delivered and acked.
func drained(tb testing.TB, js jetstream.JetStream) func() bool {
	tb.Helper()
	return func() bool {
		tb.Helper()
		i := consumerInfo(tb, js)
		return i.NumPending == 0 && i.NumAckPending == 0 && i.NumRedelivered == 0
	}
}

func dlqMsgs(tb testing.TB, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	tb.Helper()
	s, err := js.Stream(context.Background(), consumer.DefaultDLQStream)
	if err != nil {
		tb.Fatalf("dlq stream: %v", err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := uint64(1); seq <= s.CachedInfo().State.LastSeq; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			tb.Fatalf("dlq get %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

func dlqCount(tb testing.TB, js jetstream.JetStream) func() uint64 {
	tb.Helper()
	return func() uint64 {
		s, err := js.Stream(context.Background(), consumer.DefaultDLQStream)
		if err != nil {
			return 0
		}
		return s.CachedInfo().State.Msgs
	}
}

func TestConsumerRecordsThenAcks(t *testing.T) {
	js := mustJetStream(t)
	seq1 := publish(t, js, "jobs.created", jobBody("j1", "Backend Engineer"))
	publish(t, js, "jobs.updated", jobBody("j1", "Senior Backend Engineer"))
	publish(t, js, "jobs.closed", `{"id":"j1"}`)

	rec := &recorder{}
	var ackPendingDuringRecord []int
	rec.hook = func(ctx context.Context, _ int, batch []jobevent.Matched) error {
		// Nothing of the batch may be acked while it is being recorded.
		ackPendingDuringRecord = append(ackPendingDuringRecord, consumerInfo(t, js).NumAckPending)
		return nil
	}
	reg := prometheus.NewRegistry()
	c := consumer.New(js, fastConfig(), matchFunc(matchAll), rec, testenv.Logger(t), consumer.NewMetrics(reg))
	run(t, c)

	testenv.Eventually(t, wait, func() bool { return rec.count() == 3 }, "3 events recorded, got %d", rec.count())
	testenv.Eventually(t, wait, drained(t, js), "all events acked")

	got := rec.recorded()
	wantKinds := []jobevent.Kind{jobevent.Created, jobevent.Updated, jobevent.Closed}
	for i, m := range got {
		if m.Event.Kind != wantKinds[i] || m.Event.Job.ID != "j1" || m.Event.StreamSeq != seq1+uint64(i) {
			t.Errorf("event %d: got kind %v id %q seq %d", i, m.Event.Kind, m.Event.Job.ID, m.Event.StreamSeq)
		}
		if m.Event.Subject != "jobs."+wantKinds[i].String() {
			t.Errorf("event %d: subject %q", i, m.Event.Subject)
		}
	}
	if got[0].Event.Job.Title != "Backend Engineer" || len(got[0].SubscriptionIDs) != 2 || got[0].SubscriptionIDs[0] != "sub-j1" {
		t.Errorf("created: got %+v", got[0])
	}
	if got[2].SubscriptionIDs != nil {
		t.Errorf("closed event matched %q, want nothing", got[2].SubscriptionIDs)
	}
	for _, n := range ackPendingDuringRecord {
		if n == 0 {
			t.Errorf("events were acked before Record returned (ack pending %v)", ackPendingDuringRecord)
		}
	}
	if v := counterValue(t, reg, "jobalert_consumer_matches_total"); v != 4 {
		t.Errorf("matches_total: got %v want 4", v)
	}
	if v := counterValue(t, reg, "jobalert_consumer_events_total"); v != 3 {
		t.Errorf("events_total: got %v want 3", v)
	}
}

// counterValue sums every series of the named counter in reg.
func counterValue(tb testing.TB, reg *prometheus.Registry, name string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestPoisonGoesToDLQAndStreamKeepsFlowing(t *testing.T) {
	js := mustJetStream(t)
	publish(t, js, "jobs.created", jobBody("good-1", "Backend Engineer"))
	badSeq := publish(t, js, "jobs.created", `{"id":"bad-1","company":"Acme"}`)
	publish(t, js, "jobs.deleted", jobBody("bad-2", "Backend Engineer"))
	publish(t, js, "jobs.created", `{"id":"good-2","title":"Go Developer","company":"Acme","visa_types":["H1B","Schengen"]}`)

	rec := &recorder{}
	reg := prometheus.NewRegistry()
	c := consumer.New(js, fastConfig(), matchFunc(matchAll), rec, testenv.Logger(t), consumer.NewMetrics(reg))
	run(t, c)

	testenv.Eventually(t, wait, func() bool { return rec.count() == 2 }, "2 good events recorded, got %d", rec.count())
	testenv.Eventually(t, wait, func() bool { return dlqCount(t, js)() == 2 }, "2 poison events in the DLQ")
	testenv.Eventually(t, wait, drained(t, js), "all events acked or terminated")

	got := rec.recorded()
	if got[0].Event.Job.ID != "good-1" || got[1].Event.Job.ID != "good-2" {
		t.Errorf("recorded %q, %q; want good-1, good-2", got[0].Event.Job.ID, got[1].Event.Job.ID)
	}
	if want := []string{"H-1B"}; fmt.Sprint(got[1].Event.Job.VisaTypes) != fmt.Sprint(want) {
		t.Errorf("visa types: got %q want %q", got[1].Event.Job.VisaTypes, want)
	}

	dlq := dlqMsgs(t, js)
	if m := dlq[0]; m.Subject != "jobs_dlq.created" ||
		m.Header.Get(consumer.HeaderError) != `field "title": required` ||
		m.Header.Get(consumer.HeaderSubject) != "jobs.created" ||
		m.Header.Get(consumer.HeaderStreamSeq) != fmt.Sprint(badSeq) ||
		m.Header.Get(nats.MsgIdHdr) != fmt.Sprintf("dlq-%d", badSeq) ||
		string(m.Data) != `{"id":"bad-1","company":"Acme"}` {
		t.Errorf("DLQ message 1: subject %q headers %v body %s", m.Subject, m.Header, m.Data)
	}
	if m := dlq[1]; m.Subject != "jobs_dlq.deleted" || !strings.HasPrefix(m.Header.Get(consumer.HeaderError), `subject "jobs.deleted": not an event subject`) {
		t.Errorf("DLQ message 2: subject %q headers %v", m.Subject, m.Header)
	}
	if v := counterValue(t, reg, "jobalert_consumer_poison_total"); v != 2 {
		t.Errorf("poison_total: got %v want 2", v)
	}
	if v := counterValue(t, reg, "jobalert_consumer_visa_values_dropped_total"); v != 1 {
		t.Errorf("visa_values_dropped_total: got %v want 1", v)
	}
	if v := counterValue(t, reg, "jobalert_consumer_dlq_published_total"); v != 2 {
		t.Errorf("dlq_published_total: got %v want 2", v)
	}
}

func TestPanicsArePoisonAndDoNotStopTheConsumer(t *testing.T) {
	js := mustJetStream(t)
	publish(t, js, "jobs.created", jobBody("j1", "Backend Engineer"))
	publish(t, js, "jobs.created", jobBody("j2", "Matcher Bomb"))
	publish(t, js, "jobs.created", jobBody("j3", "Recorder Bomb"))
	publish(t, js, "jobs.created", jobBody("j4", "Go Developer"))

	m := matchFunc(func(j *matcher.Job) []string {
		if j.Title == "Matcher Bomb" {
			panic("matcher exploded")
		}
		return matchAll(j)
	})
	rec := &recorder{hook: func(_ context.Context, _ int, batch []jobevent.Matched) error {
		for _, b := range batch {
			if b.Event.Job.Title == "Recorder Bomb" {
				panic("recorder exploded")
			}
		}
		return nil
	}}
	cfg := fastConfig()
	cfg.Batch = 4
	run(t, consumer.New(js, cfg, m, rec, testenv.Logger(t), nil))

	testenv.Eventually(t, wait, func() bool { return rec.count() == 2 }, "the 2 good events recorded, got %d", rec.count())
	testenv.Eventually(t, wait, func() bool { return dlqCount(t, js)() == 2 }, "2 panicking events in the DLQ")
	testenv.Eventually(t, wait, drained(t, js), "all events acked or terminated")
	reasons := map[string]bool{}
	for _, m := range dlqMsgs(t, js) {
		reasons[m.Header.Get(consumer.HeaderError)] = true
	}
	if !reasons["panic: matcher exploded"] || !reasons["panic: recorder exploded"] {
		t.Errorf("DLQ reasons: got %v", reasons)
	}
}

func TestDLQFailureNaksUntilTheCopySucceeds(t *testing.T) {
	js := mustJetStream(t)
	ctx := context.Background()
	if err := js.DeleteStream(ctx, consumer.DefaultDLQStream); err != nil {
		t.Fatalf("delete DLQ: %v", err)
	}
	publish(t, js, "jobs.created", `{"id":"bad"}`)
	publish(t, js, "jobs.created", jobBody("good", "Backend Engineer"))

	rec := &recorder{}
	reg := prometheus.NewRegistry()
	run(t, consumer.New(js, fastConfig(), matchFunc(matchAll), rec, testenv.Logger(t), consumer.NewMetrics(reg)))

	testenv.Eventually(t, wait, func() bool { return rec.count() == 1 }, "the good event recorded")
	testenv.Eventually(t, wait, func() bool { return counterValue(t, reg, "jobalert_consumer_dlq_publish_errors_total") >= 2 },
		"the DLQ copy failed and was retried")
	if err := consumer.EnsureStreams(ctx, js, consumer.StreamConfig{}); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	testenv.Eventually(t, wait, func() bool { return dlqCount(t, js)() == 1 }, "the poison event in the DLQ once it exists")
	testenv.Eventually(t, wait, func() bool {
		i := consumerInfo(t, js)
		return i.NumPending == 0 && i.NumAckPending == 0
	}, "all events acked or terminated")
}

func TestRecorderFailuresLeadToRedeliveryNotLoss(t *testing.T) {
	js := mustJetStream(t)
	for i := range 5 {
		publish(t, js, "jobs.created", jobBody(fmt.Sprintf("j%d", i), "Backend Engineer"))
	}
	// The failed calls' batches need not hold all five: a busy machine can
	// fetch them in smaller batches. Count what they held.
	var failed atomic.Int64
	rec := &recorder{hook: func(_ context.Context, call int, batch []jobevent.Matched) error {
		if call <= 2 {
			failed.Add(int64(len(batch)))
			return errors.New("redis: connection refused")
		}
		return nil
	}}
	reg := prometheus.NewRegistry()
	cfg := fastConfig()
	cfg.MaxWait = 200 * time.Millisecond
	run(t, consumer.New(js, cfg, matchFunc(matchAll), rec, testenv.Logger(t), consumer.NewMetrics(reg)))

	testenv.Eventually(t, wait, func() bool { return rec.count() == 5 }, "5 events recorded, got %d", rec.count())
	testenv.Eventually(t, wait, func() bool {
		i := consumerInfo(t, js)
		return i.NumPending == 0 && i.NumAckPending == 0
	}, "all events acked")
	seen := map[string]int{}
	for _, m := range rec.recorded() {
		seen[m.Event.Job.ID]++
	}
	for i := range 5 {
		if id := fmt.Sprintf("j%d", i); seen[id] != 1 {
			t.Errorf("%s recorded %d times, want once", id, seen[id])
		}
	}
	if v := counterValue(t, reg, "jobalert_consumer_record_errors_total"); v != 2 {
		t.Errorf("record errors %v, want 2", v)
	}
	if v, want := counterValue(t, reg, "jobalert_consumer_events_total"), float64(5+failed.Load()); v != want {
		t.Errorf("events_total (retried + recorded): got %v, want %v", v, want)
	}
}

func TestReplicasShareTheDurableConsumer(t *testing.T) {
	js := mustJetStream(t)
	const n = 200
	for i := range n {
		publish(t, js, "jobs.created", jobBody(fmt.Sprintf("j%03d", i), "Backend Engineer"))
	}
	// Each replica's first Record waits until both have one in hand, which
	// proves NATS hands batches to both while neither has acked.
	var barrier sync.WaitGroup
	barrier.Add(2)
	both := make(chan struct{})
	go func() { barrier.Wait(); close(both) }()
	first := func(ctx context.Context, call int, _ []jobevent.Matched) error {
		if call != 1 {
			return nil
		}
		barrier.Done()
		select {
		case <-both:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a, b := &recorder{hook: first}, &recorder{hook: first}
	cfg := fastConfig()
	cfg.Batch = 10
	cfg.RecordTimeout = wait
	run(t, consumer.New(js, cfg, matchFunc(matchAll), a, testenv.Logger(t), nil))
	run(t, consumer.New(js, cfg, matchFunc(matchAll), b, testenv.Logger(t), nil))

	testenv.Eventually(t, wait, func() bool { return a.count()+b.count() == n }, "%d events recorded, got %d", n, a.count()+b.count())
	testenv.Eventually(t, wait, drained(t, js), "all events acked")
	seen := map[string]int{}
	for _, r := range []*recorder{a, b} {
		for _, m := range r.recorded() {
			seen[m.Event.Job.ID]++
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct events recorded, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s recorded %d times", id, c)
		}
	}
	if a.count() == 0 || b.count() == 0 {
		t.Errorf("work not shared: replica a %d, b %d", a.count(), b.count())
	}
}

// TestRunReturnsPromptlyAfterCancel: with no batch in hand, Run returns
// once its pending fetch ends (MaxWait), without waiting out the grace
// period: here an hour, far past the bound on the wait. How long the stop
// takes is measured by BenchmarkRunStop.
func TestRunReturnsPromptlyAfterCancel(t *testing.T) {
	js := mustJetStream(t)
	c := consumer.New(js, consumer.Config{ShutdownTimeout: time.Hour}, matchFunc(matchAll), &recorder{}, testenv.Logger(t), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	// Let it reach its fetch loop before the stop.
	testenv.Eventually(t, wait, func() bool { return consumerInfo(t, js).NumWaiting > 0 }, "a pull request waiting")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(wait):
		t.Fatalf("Run did not return within %v of cancel: it waits for the grace period", wait)
	}
}

// BenchmarkRunStop measures how long Run takes to return after its context
// is cancelled while a fetch is pending (the default MaxWait, 100ms, bounds
// it).
func BenchmarkRunStop(b *testing.B) {
	js := mustJetStream(b)
	for b.Loop() {
		b.StopTimer()
		c := consumer.New(js, consumer.Config{}, matchFunc(matchAll), &recorder{}, testenv.Logger(b), nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		testenv.Eventually(b, wait, func() bool { return consumerInfo(b, js).NumWaiting > 0 }, "a pull request waiting")
		b.StartTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatalf("Run: %v", err)
		}
	}
}

func TestShutdownFinishesTheBatchInHand(t *testing.T) {
	js := mustJetStream(t)
	publish(t, js, "jobs.created", jobBody("j1", "Backend Engineer"))
	entered, release := make(chan struct{}), make(chan struct{})
	var workCtxErr error
	rec := &recorder{hook: func(ctx context.Context, _ int, _ []jobevent.Matched) error {
		close(entered)
		<-release
		workCtxErr = ctx.Err()
		return nil
	}}
	stop := run(t, consumer.New(js, fastConfig(), matchFunc(matchAll), rec, testenv.Logger(t), nil))
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("Record not called")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) while Record was in progress", err)
	default:
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if workCtxErr != nil {
		t.Errorf("Record's context was cancelled at shutdown: %v", workCtxErr)
	}
	if rec.count() != 1 {
		t.Errorf("recorded %d, want 1", rec.count())
	}
	testenv.Eventually(t, wait, drained(t, js), "the in-flight event acked")
}

func TestShutdownTimeoutLeavesWorkForRedelivery(t *testing.T) {
	js := mustJetStream(t)
	publish(t, js, "jobs.created", jobBody("j1", "Backend Engineer"))
	entered := make(chan struct{})
	stuck := &recorder{hook: func(ctx context.Context, _ int, _ []jobevent.Matched) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}}
	cfg := fastConfig()
	cfg.ShutdownTimeout = 100 * time.Millisecond
	stop := run(t, consumer.New(js, cfg, matchFunc(matchAll), stuck, testenv.Logger(t), nil))
	select {
	case <-entered:
	case <-time.After(wait):
		t.Fatal("Record not called")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if stuck.count() != 0 {
		t.Fatalf("stuck recorder recorded %d", stuck.count())
	}

	// Another replica (or the restart) gets the event: nothing is lost.
	rec := &recorder{}
	run(t, consumer.New(js, fastConfig(), matchFunc(matchAll), rec, testenv.Logger(t), nil))
	testenv.Eventually(t, wait, func() bool { return rec.count() == 1 }, "the event redelivered and recorded")
	testenv.Eventually(t, wait, func() bool {
		i := consumerInfo(t, js)
		return i.NumPending == 0 && i.NumAckPending == 0
	}, "the event acked")
}

// concurrentRecorder waits, in each Record, until two calls are inside at
// once (or a bound passes), and notes the most it saw.
type concurrentRecorder struct {
	mu       sync.Mutex
	inside   int
	most     int
	recorded int
	both     chan struct{}
}

func (r *concurrentRecorder) Record(ctx context.Context, batch []jobevent.Matched) error {
	r.mu.Lock()
	r.inside++
	r.most = max(r.most, r.inside)
	if r.inside == 2 {
		close(r.both)
	}
	r.mu.Unlock()
	select {
	case <-r.both:
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inside--
	r.recorded += len(batch)
	return nil
}

func TestTwoBatchesAreRecordedAtOnce(t *testing.T) {
	js := mustJetStream(t)
	for i := range 4 {
		publish(t, js, "jobs.created", jobBody("j"+strconv.Itoa(i), "Backend Engineer"))
	}
	rec := &concurrentRecorder{both: make(chan struct{})}
	cfg := fastConfig()
	cfg.Batch = 2
	run(t, consumer.New(js, cfg, matchFunc(matchAll), rec, testenv.Logger(t), nil))
	testenv.Eventually(t, 10*time.Second, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.recorded == 4
	}, "the 4 events not recorded")
	testenv.Eventually(t, 10*time.Second, drained(t, js), "stream not drained")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.most != 2 || rec.recorded != 4 {
		t.Fatalf("got %d Record calls at once and %d events recorded, want 2 and 4", rec.most, rec.recorded)
	}
}
