package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/jobalert/jobalert/internal/grace"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

// Matcher returns the ids of the subscriptions whose filter matches a job.
// The Consumer calls it from several goroutines at once.
type Matcher interface {
	MatchIDs(j *matcher.Job) []string
}

// KeyedMatcher is a Matcher that can also give each id a small integer key
// (matcher.Index.MatchKeyed), which the Consumer passes on in jobevent.Matched.Keys.
type KeyedMatcher interface {
	Matcher
	MatchKeyed(j *matcher.Job) (ids []string, keys []uint32)
}

// Recorder durably records a batch of events and their matches; only after
// it returns nil may the events be acked. An error means nothing in the
// batch may be assumed recorded: every event is redelivered later, so
// Record must be idempotent per (event, subscription).
type Recorder interface {
	Record(ctx context.Context, batch []jobevent.Matched) error
}

// Headers set on every message copied to the DLQ stream.
const (
	HeaderError     = "Jobalert-Error"      // why the event is poison
	HeaderSubject   = "Jobalert-Subject"    // the subject it was published on
	HeaderStreamSeq = "Jobalert-Stream-Seq" // its sequence in the events stream
	HeaderMsgID     = "Jobalert-Msg-Id"     // its Nats-Msg-Id, when it had one
)

// Config tunes a Consumer. Zero fields take the defaults in brackets.
type Config struct {
	Stream    string // events stream [JOBS]
	DLQStream string // dead-letter stream [JOBS_DLQ]
	Consumer  string // durable consumer name [jobalert]

	Batch   int           // most messages per fetch and per Record call [256]
	MaxWait time.Duration // longest a fetch waits to fill a batch [100ms]

	// InFlight is how many batches are handled at once [2]. With two, one
	// batch is fetched, decoded and matched while the other is recorded,
	// so Redis does not wait for the matcher; the Recorder must allow
	// concurrent calls (store.Redis does, as replicas need anyway).
	InFlight int

	// NakDelay is the redelivery delay after a failed Record; it doubles
	// with each delivery of the message, up to MaxNakDelay. [1s, 1m]
	NakDelay    time.Duration
	MaxNakDelay time.Duration

	RecordTimeout   time.Duration // bound on one Record call [2m]
	ShutdownTimeout time.Duration // bound on in-flight work once Run's ctx is done [10s]
	MatchWorkers    int           // goroutines matching a batch [GOMAXPROCS]
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.DLQStream == "" {
		c.DLQStream = DefaultDLQStream
	}
	if c.Consumer == "" {
		c.Consumer = DefaultConsumer
	}
	if c.Batch <= 0 {
		c.Batch = 256
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 100 * time.Millisecond
	}
	if c.InFlight <= 0 {
		c.InFlight = 2
	}
	if c.NakDelay <= 0 {
		c.NakDelay = time.Second
	}
	if c.MaxNakDelay <= 0 {
		c.MaxNakDelay = time.Minute
	}
	if c.MaxNakDelay < c.NakDelay {
		c.MaxNakDelay = c.NakDelay
	}
	if c.RecordTimeout <= 0 {
		c.RecordTimeout = 2 * time.Minute
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.MatchWorkers <= 0 {
		c.MatchWorkers = runtime.GOMAXPROCS(0)
	}
	return c
}

// Consumer pulls job events from the shared durable consumer in batches,
// decodes, matches and records them, and acks each event only once the
// Recorder has returned nil. Any number of Consumers, in one process or
// many, may run on the same durable consumer: NATS splits the work.
type Consumer struct {
	js      jetstream.JetStream
	cfg     Config
	matcher Matcher
	rec     Recorder
	log     *slog.Logger
	metrics *Metrics
	reposts Reposts // nil: no repost collapsing
}

// New returns a Consumer reading through js with the given matcher and
// recorder, both required. A nil logger discards logs; nil metrics are not
// collected. The streams and the durable consumer must exist
// (EnsureStreams).
func New(js jetstream.JetStream, cfg Config, m Matcher, r Recorder, logger *slog.Logger, metrics *Metrics) *Consumer {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Consumer{
		js:      js,
		cfg:     cfg.withDefaults(),
		matcher: m,
		rec:     r,
		log:     logger.With("component", "consumer"),
		metrics: metrics,
	}
}

// RecordTimeout is the longest one Record call may last
// (Config.RecordTimeout with its default).
func (c *Consumer) RecordTimeout() time.Duration { return c.cfg.RecordTimeout }

// Run consumes until ctx is done, then finishes the batch in hand (bounded
// by Config.ShutdownTimeout; what is left unacked is redelivered later,
// possibly to another replica) and returns nil. Transient NATS errors are
// logged and retried; Run returns an error only when the NATS connection is
// closed.
func (c *Consumer) Run(ctx context.Context) error {
	// In-flight work outlives ctx by at most ShutdownTimeout, so that a
	// batch being recorded when the stop comes is recorded and acked
	// rather than abandoned.
	work, release := grace.Period(ctx, c.cfg.ShutdownTimeout, nil)
	defer release()

	c.log.Info("consuming", "stream", c.cfg.Stream, "consumer", c.cfg.Consumer, "batch", c.cfg.Batch)
	var (
		cons     jetstream.Consumer
		ackWait  time.Duration
		errDelay time.Duration
		handling sync.WaitGroup
		slots    = make(chan struct{}, c.cfg.InFlight) // one per batch fetched and not yet handled
	)
	for ctx.Err() == nil {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		release := func() { <-slots }
		if c.js.Conn().IsClosed() {
			handling.Wait()
			return fmt.Errorf("consume %s/%s: %w", c.cfg.Stream, c.cfg.Consumer, nats.ErrConnectionClosed)
		}
		if cons == nil {
			var err error
			cons, err = c.js.Consumer(ctx, c.cfg.Stream, c.cfg.Consumer)
			if err != nil {
				cons = nil
				release()
				errDelay = c.fetchFailed(ctx, fmt.Errorf("look up consumer: %w", err), errDelay)
				continue
			}
			ackWait = cons.CachedInfo().Config.AckWait
		}
		batch, err := cons.Fetch(c.cfg.Batch, jetstream.FetchMaxWait(c.cfg.MaxWait))
		if err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				cons = nil
			}
			release()
			errDelay = c.fetchFailed(ctx, fmt.Errorf("fetch: %w", err), errDelay)
			continue
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) > 0 {
			handling.Go(func() {
				defer release()
				c.handle(work, msgs, ackWait)
			})
		} else {
			release()
		}
		if err := batch.Error(); err != nil {
			if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
				cons = nil
			}
			errDelay = c.fetchFailed(ctx, fmt.Errorf("fetch: %w", err), errDelay)
			continue
		}
		errDelay = 0
	}

	handling.Wait()
	// Acks are buffered by the connection: push them out before returning
	// so the caller may close it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := c.js.Conn().FlushWithContext(fctx); err != nil {
		c.log.Warn("flush acks at shutdown", "err", err)
	}
	c.log.Info("stopped consuming")
	return nil
}

// fetchFailed logs and counts a fetch error, then waits (until ctx is done)
// before the next try; it returns the next delay.
func (c *Consumer) fetchFailed(ctx context.Context, err error, delay time.Duration) time.Duration {
	if ctx.Err() != nil {
		return delay
	}
	c.metrics.fetchError()
	if delay == 0 {
		delay = 100 * time.Millisecond
	}
	c.log.Warn("fetch failed, retrying", "err", err, "in", delay)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return min(2*delay, 5*time.Second)
}

// item is one message of a batch on its way through handle.
type item struct {
	msg       jetstream.Msg
	seq       uint64 // stream sequence, 0 when unknown
	delivered uint64 // delivery count, from 1
	kind      string // metric label
	ev        jobevent.Event
	ids       []string
	keys      []uint32
	poison    error  // non-nil: the message is poison, for this reason
	repost    string // a jobs.created's repost decision (metric label), once resolved
}

// handle takes one fetched batch through decode, match, DLQ, Record and
// ack. Every message leaves it acked, terminated or naked, except when ctx
// is cancelled by the shutdown timeout, in which case NATS redelivers it
// after AckWait.
func (c *Consumer) handle(ctx context.Context, msgs []jetstream.Msg, ackWait time.Duration) {
	start := time.Now()
	stopKeepAlive := keepAlive(msgs, ackWait)
	defer stopKeepAlive()

	items := make([]*item, len(msgs))
	for i, m := range msgs {
		it := &item{msg: m, delivered: 1, kind: "unknown"}
		if meta, err := m.Metadata(); err == nil {
			it.seq, it.delivered = meta.Sequence.Stream, meta.NumDelivered
		}
		if k, err := KindOf(m.Subject()); err == nil {
			it.kind = k.String()
		}
		it.poison = safely(func() error {
			ev, err := DecodeEvent(m.Subject(), m.Data())
			if err != nil {
				return err
			}
			ev.StreamSeq = it.seq
			it.ev = ev
			return nil
		})
		if len(it.ev.Dropped) > 0 {
			c.metrics.visaDropped(len(it.ev.Dropped))
			c.log.Debug("unknown visa values dropped", "job", it.ev.Job.ID, "values", it.ev.Dropped)
		}
		items[i] = it
	}

	c.match(items)

	var good []*item
	for _, it := range items {
		if it.poison != nil {
			c.deadLetter(ctx, it)
		} else {
			good = append(good, it)
		}
	}
	if len(good) > 0 {
		c.recordAndAck(ctx, good)
	}
	c.metrics.batch(len(msgs), time.Since(start))
}

// match fills in the subscription ids of every good non-closed item, on up
// to MatchWorkers goroutines. A panic poisons only its own item.
func (c *Consumer) match(items []*item) {
	var todo []*item
	for _, it := range items {
		if it.poison == nil && it.ev.Kind != jobevent.Closed {
			todo = append(todo, it)
		}
	}
	keyed, _ := c.matcher.(KeyedMatcher)
	one := func(it *item) {
		start := time.Now()
		defer func() { c.metrics.matchTime(time.Since(start)) }()
		it.poison = safely(func() error {
			if keyed != nil {
				it.ids, it.keys = keyed.MatchKeyed(&it.ev.Job)
			} else {
				it.ids = c.matcher.MatchIDs(&it.ev.Job)
			}
			return nil
		})
	}
	workers := min(c.cfg.MatchWorkers, len(todo))
	if workers <= 1 {
		for _, it := range todo {
			one(it)
		}
		return
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(todo) {
					return
				}
				one(todo[i])
			}
		})
	}
	wg.Wait()
}

// recordAndAck records the good items in one Record call and acks them, or
// naks them all with a delay when Record fails. When Record panics, the
// items are recorded one by one so that only the culprit is poisoned.
func (c *Consumer) recordAndAck(ctx context.Context, items []*item) {
	err := c.record(ctx, items)
	var pe *panicError
	if errors.As(err, &pe) {
		if len(items) == 1 {
			items[0].poison = err
			c.deadLetter(ctx, items[0])
			return
		}
		c.log.Error("recorder panicked on a batch; recording its events one by one", "err", err, "events", len(items))
		for _, it := range items {
			c.recordAndAck(ctx, []*item{it})
		}
		return
	}
	if err != nil {
		c.metrics.recordError()
		// One delay for the whole batch keeps its events together, in
		// stream order, when they come back.
		var delivered uint64
		for _, it := range items {
			delivered = max(delivered, it.delivered)
		}
		delay := c.nakDelay(delivered)
		c.log.Error("record failed; events will be redelivered", "err", err, "events", len(items), "delivery", delivered, "delay", delay)
		for _, it := range items {
			if err := it.msg.NakWithDelay(delay); err != nil {
				c.log.Warn("nak failed; NATS redelivers after the ack wait", "err", err, "seq", it.seq)
			}
			c.metrics.event(it.kind, "retried")
		}
		return
	}
	for _, it := range items {
		if err := it.msg.Ack(); err != nil {
			// The event is recorded; a lost ack only means a redelivery,
			// which the Recorder's dedup absorbs.
			c.log.Warn("ack failed; the event will be redelivered", "err", err, "seq", it.seq)
		}
		c.metrics.event(it.kind, "recorded")
		if it.repost != "" {
			c.metrics.repostDecided(it.repost)
		}
		c.metrics.matched(len(it.ids))
		if it.ev.Kind != jobevent.Closed {
			c.metrics.matchedJob(len(it.ids))
		}
	}
}

func (c *Consumer) record(ctx context.Context, items []*item) (err error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RecordTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: debug.Stack()}
		}
	}()
	if err := c.resolveReposts(ctx, items); err != nil {
		return err
	}
	batch := make([]jobevent.Matched, len(items))
	for i, it := range items {
		batch[i] = jobevent.Matched{Event: it.ev, SubscriptionIDs: it.ids, Keys: it.keys}
	}
	return c.rec.Record(ctx, batch)
}

// nakDelay is NakDelay doubled per earlier delivery, capped at MaxNakDelay,
// with ±20% jitter so replicas do not retry in step.
func (c *Consumer) nakDelay(delivered uint64) time.Duration {
	d := c.cfg.NakDelay
	for i := uint64(1); i < delivered && d < c.cfg.MaxNakDelay; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxNakDelay)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// deadLetter copies a poison message to the DLQ stream with its reason and
// terminates it. The copy carries Nats-Msg-Id "dlq-<seq>", so a poison
// message redelivered after a lost Term is not copied twice. When the copy
// fails, the message is naked to be tried again: it is never terminated
// without its copy.
func (c *Consumer) deadLetter(ctx context.Context, it *item) {
	reason := headerSafe(it.poison.Error())
	cause := "decode"
	var pe *panicError
	if errors.As(it.poison, &pe) {
		cause = "panic"
		c.log.Error("panic while handling an event", "seq", it.seq, "subject", it.msg.Subject(), "panic", pe.value, "stack", string(pe.stack))
	}
	c.metrics.poison(cause)
	c.metrics.event(it.kind, "poison")

	rest, ok := strings.CutPrefix(it.msg.Subject(), "jobs.")
	if !ok || rest == "" {
		rest = "unknown"
	}
	m := nats.NewMsg(dlqPrefix + rest)
	m.Data = it.msg.Data()
	m.Header.Set(HeaderError, reason)
	m.Header.Set(HeaderSubject, it.msg.Subject())
	m.Header.Set(HeaderStreamSeq, strconv.FormatUint(it.seq, 10))
	if id := it.msg.Headers().Get(jetstream.MsgIDHeader); id != "" {
		m.Header.Set(HeaderMsgID, headerSafe(id))
	}
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(c.cfg.DLQStream)}
	if it.seq != 0 {
		opts = append(opts, jetstream.WithMsgID("dlq-"+strconv.FormatUint(it.seq, 10)))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, m, opts...); err != nil {
		c.metrics.dlqError()
		delay := c.nakDelay(it.delivered)
		c.log.Error("copy to DLQ failed; the poison event will be redelivered", "err", err, "seq", it.seq, "reason", reason, "delay", delay)
		if err := it.msg.NakWithDelay(delay); err != nil {
			c.log.Warn("nak failed; NATS redelivers after the ack wait", "err", err, "seq", it.seq)
		}
		return
	}
	c.metrics.dlqPublish()
	c.log.Warn("poison event moved to the DLQ", "seq", it.seq, "subject", it.msg.Subject(), "reason", reason)
	if err := it.msg.TermWithReason(reason); err != nil {
		c.log.Warn("term failed; the event will be redelivered and deduplicated in the DLQ", "err", err, "seq", it.seq)
	}
}

// keepAlive tells NATS every third of the ack wait that msgs are still
// being worked on, so that a long batch is not redelivered to another
// replica meanwhile. The returned func stops it and waits for it.
func keepAlive(msgs []jetstream.Msg, ackWait time.Duration) func() {
	if ackWait <= 0 {
		ackWait = DefaultAckWait
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(ackWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress() // best effort; errors for already-acked messages are expected
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// panicError is a recovered panic, turned into a poison reason.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// safely runs f, turning a panic into a *panicError.
func safely(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &panicError{value: r, stack: debug.Stack()}
		}
	}()
	return f()
}

// headerSafe makes s fit a NATS header value and an ack reason: one line,
// at most 1 KiB.
func headerSafe(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return truncate(strings.TrimSpace(s), 1024)
}

// Metrics are the consumer's Prometheus metrics. A nil *Metrics is valid
// and collects nothing.
type Metrics struct {
	events        *prometheus.CounterVec
	poisons       *prometheus.CounterVec
	dlqPublished  prometheus.Counter
	dlqErrors     prometheus.Counter
	visasDropped  prometheus.Counter
	matches       prometheus.Counter
	matchDuration prometheus.Histogram
	matchesPerJob prometheus.Histogram
	recordErrors  prometheus.Counter
	reposts       *prometheus.CounterVec
	fetchErrors   prometheus.Counter
	batchDuration prometheus.Histogram
	batchSize     prometheus.Histogram
}

// Label values known in advance: every series of them exists, at zero,
// from the start.
var (
	eventKinds    = []string{"created", "updated", "closed", "unknown"}
	eventOutcomes = []string{"recorded", "poison", "retried"}
	poisonCauses  = []string{"decode", "panic"}
)

// NewMetrics creates the consumer's metrics and registers them with reg
// (nil: not registered). Like prometheus.MustRegister, it panics when they
// are already registered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	m := &Metrics{
		events: f.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_consumer_events_total",
			Help: "Job events handled, by kind (the subject: created, updated, closed, unknown) and outcome (recorded, poison, retried).",
		}, []string{"kind", "outcome"}),
		poisons: f.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_consumer_poison_total",
			Help: "Poison events sent to the DLQ, by cause (decode, panic).",
		}, []string{"cause"}),
		dlqPublished: f.NewCounter(prometheus.CounterOpts{
			Name: "jobalert_consumer_dlq_published_total",
			Help: "Poison events copied to the DLQ stream.",
		}),
		dlqErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "jobalert_consumer_dlq_publish_errors_total",
			Help: "Failed copies of poison events to the DLQ stream (the event is redelivered).",
		}),
		visasDropped: f.NewCounter(prometheus.CounterOpts{
			Name: "jobalert_consumer_visa_values_dropped_total",
			Help: "Unknown visa values dropped from job events (docs/matching.md §4).",
		}),
		matches: f.NewCounter(prometheus.CounterOpts{
			Name: "jobalert_consumer_matches_total",
			Help: "Matched (subscription, job) pairs recorded.",
		}),
		matchDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "jobalert_consumer_match_duration_seconds",
			Help:    "Time to match one job against the filter index.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}),
		matchesPerJob: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "jobalert_consumer_matches_per_job",
			Help:    "Subscriptions matched by one recorded created or updated job.",
			Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000},
		}),
		reposts: f.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_consumer_repost_decisions_total",
			Help: "Recorded jobs.created events by repost decision: new (a job of its own), or the alias that made it a repost of an earlier job (canonical_id, apply_url, same_role).",
		}, []string{"decision"}),
		recordErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "jobalert_consumer_record_errors_total",
			Help: "Failed Record calls (their batch is redelivered).",
		}),
		fetchErrors: f.NewCounter(prometheus.CounterOpts{
			Name: "jobalert_consumer_fetch_errors_total",
			Help: "Failed fetches from the durable consumer.",
		}),
		batchDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "jobalert_consumer_batch_duration_seconds",
			Help:    "Time to decode, match, record and ack one fetched batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		batchSize: f.NewHistogram(prometheus.HistogramOpts{
			Name:    "jobalert_consumer_batch_size",
			Help:    "Messages per fetched batch.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
	}
	for _, k := range eventKinds {
		for _, o := range eventOutcomes {
			m.events.WithLabelValues(k, o)
		}
	}
	for _, c := range poisonCauses {
		m.poisons.WithLabelValues(c)
	}
	for _, d := range repostDecisions {
		m.reposts.WithLabelValues(d)
	}
	return m
}

func (m *Metrics) event(kind, outcome string) {
	if m != nil {
		m.events.WithLabelValues(kind, outcome).Inc()
	}
}

func (m *Metrics) poison(cause string) {
	if m != nil {
		m.poisons.WithLabelValues(cause).Inc()
	}
}

func (m *Metrics) dlqPublish() {
	if m != nil {
		m.dlqPublished.Inc()
	}
}

func (m *Metrics) matchTime(d time.Duration) {
	if m != nil {
		m.matchDuration.Observe(d.Seconds())
	}
}

func (m *Metrics) matchedJob(n int) {
	if m != nil {
		m.matchesPerJob.Observe(float64(n))
	}
}

func (m *Metrics) dlqError() {
	if m != nil {
		m.dlqErrors.Inc()
	}
}

func (m *Metrics) visaDropped(n int) {
	if m != nil {
		m.visasDropped.Add(float64(n))
	}
}

func (m *Metrics) matched(n int) {
	if m != nil {
		m.matches.Add(float64(n))
	}
}

func (m *Metrics) repostDecided(decision string) {
	if m != nil {
		m.reposts.WithLabelValues(decision).Inc()
	}
}

func (m *Metrics) recordError() {
	if m != nil {
		m.recordErrors.Inc()
	}
}

func (m *Metrics) fetchError() {
	if m != nil {
		m.fetchErrors.Inc()
	}
}

func (m *Metrics) batch(size int, d time.Duration) {
	if m != nil {
		m.batchSize.Observe(float64(size))
		m.batchDuration.Observe(d.Seconds())
	}
}
