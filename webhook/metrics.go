package webhook

import (
	"context"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Metrics counts webhook attempts and dead letters. A nil *Metrics counts
// nothing.
type Metrics struct {
	attempts *prometheus.CounterVec
	duration prometheus.Histogram
	dead     *prometheus.CounterVec
}

// Label values known in advance: every series of them exists, at zero,
// from the start.
var (
	statusClasses = []string{"2xx", "3xx", "4xx", "5xx", "error"}
	deadReasons   = []string{"exhausted", "gone", "disabled"}
)

// NewMetrics registers the webhook metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_webhook_attempts_total",
			Help: "Webhook attempts, by the class of the endpoint's answer (2xx, 3xx, 4xx, 5xx; error: no answer, e.g. refused, timed out, blocked by the SSRF guard).",
		}, []string{"class"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "jobalert_webhook_attempt_duration_seconds",
			Help:    "Time of one webhook attempt, to the answer's headers and the first bytes of its body.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 13),
		}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_webhook_dead_letters_total",
			Help: "Webhook deliveries turned dead letters, by reason (exhausted: every attempt failed; gone: the endpoint answered 410 and was disabled; disabled: queued for a disabled endpoint).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.attempts, m.duration, m.dead)
	for _, c := range statusClasses {
		m.attempts.WithLabelValues(c)
	}
	for _, r := range deadReasons {
		m.dead.WithLabelValues(r)
	}
	return m
}

func (m *Metrics) attempt(r result) {
	if m == nil || r.canceled {
		return
	}
	class := "error"
	if r.status >= 200 && r.status < 600 {
		class = strconv.Itoa(r.status/100) + "xx"
	}
	if m.attempts.WithLabelValues(class).Inc(); r.dur > 0 {
		m.duration.Observe(r.dur.Seconds())
	}
}

func (m *Metrics) deadLetter(reason string) {
	if m != nil {
		m.dead.WithLabelValues(reason).Inc()
	}
}

// Backlog is the state of the delivery queue, shared by every replica.
type Backlog struct {
	Queued       int64 // deliveries waiting for an attempt (scheduled, retrying or in flight)
	Due          int64 // of which due now
	DeadLetters  int64 // dead letters kept (for DeadLetterTTL)
	CircuitsOpen int64 // endpoints whose circuit breaker is open now
}

// Backlog reads the delivery queue's counts.
func (s *Service) Backlog(ctx context.Context) (Backlog, error) {
	now := strconv.FormatInt(s.nowMS(), 10)
	pipe := s.rdb.Pipeline()
	queued := pipe.ZCard(ctx, s.key("q"))
	due := pipe.ZCount(ctx, s.key("q"), "-inf", now)
	dead := pipe.ZCard(ctx, s.key("dead"))
	open := pipe.ZCount(ctx, s.key("cbopen"), "("+now, "+inf")
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return Backlog{}, fmt.Errorf("webhook backlog: %w", err)
	}
	return Backlog{Queued: queued.Val(), Due: due.Val(), DeadLetters: dead.Val(), CircuitsOpen: open.Val()}, nil
}
