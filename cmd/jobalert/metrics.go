package main

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/connlimit"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/webhook"
)

// appMetrics are the metrics of one process. Every family that does not
// depend on a role is registered at start, in every role, with a zero
// series for each label value known in advance; the sampled gauges of a
// role (registerConsumer, registerNotifier, registerHTTP) only where it
// runs. docs/metrics.md lists them all.
type appMetrics struct {
	reg      *prometheus.Registry
	consumer *consumer.Metrics
	notifier *notifier.Metrics
	webhook  *webhook.Metrics

	redisErrors  prometheus.Counter
	natsErrors   *prometheus.CounterVec
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
	indexBuild   prometheus.Histogram
}

// natsErrorKinds are the kind label values of jobalert_nats_errors_total.
var natsErrorKinds = []string{"async", "disconnect", "reconnect", "info"}

// httpClasses are the class label values of jobalert_http_requests_total.
var httpClasses = []string{"2xx", "3xx", "4xx", "5xx"}

// sampleTimeout bounds each read of a sampled gauge at scrape time.
const sampleTimeout = 2 * time.Second

func newAppMetrics(reg *prometheus.Registry, ready func(context.Context) error) *appMetrics {
	m := &appMetrics{
		reg:      reg,
		consumer: consumer.NewMetrics(reg),
		notifier: notifier.NewMetrics(reg),
		webhook:  webhook.NewMetrics(reg),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jobalert_redis_errors_total",
			Help: "Redis commands and pipelines that failed (timeouts, refused connections, error replies; not a missing key).",
		}),
		natsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_nats_errors_total",
			Help: "NATS errors, by kind (async: reported by the server or the client library; disconnect; reconnect: a failed (re)connection attempt; info: a failed read of the consumer's or streams' state for these metrics).",
		}, []string{"kind"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jobalert_http_requests_total",
			Help: "HTTP requests to the public listener, by route pattern (\"other\": no route) and status class.",
		}, []string{"route", "class"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "jobalert_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request of the public listener, by route pattern.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		indexBuild: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "jobalert_index_build_duration_seconds",
			Help:    "Time to load every filter into a fresh index (at start, and on a reload after the change feed was trimmed).",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "jobalert_build_info",
		Help: "Always 1; the labels say which build runs.",
	}, []string{"version", "go_version"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	readyGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jobalert_ready",
		Help: "1 when /readyz would answer 200 (NATS connected, Redis answering, consumer: index loaded), else 0.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), sampleTimeout)
		defer cancel()
		if ready(ctx) != nil {
			return 0
		}
		return 1
	})
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.redisErrors, m.natsErrors, m.httpRequests, m.httpDuration, build, readyGauge)
	for _, k := range natsErrorKinds {
		m.natsErrors.WithLabelValues(k)
	}
	return m
}

func (m *appMetrics) natsError(kind string) { m.natsErrors.WithLabelValues(kind).Inc() }

// registerConsumer adds the consumer role's gauges: the index and the
// durable consumer's backlog as JetStream reports it.
func (m *appMetrics) registerConsumer(index *liveIndex, backlog *consumer.BacklogCollector) {
	m.reg.MustRegister(m.indexBuild, backlog, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jobalert_index_filters",
		Help: "Filters in the index this replica matches against.",
	}, func() float64 { return float64(index.Len()) }))
}

// registerNotifier adds the notifier role's gauges, read from Redis at
// each scrape: digests and webhooks waiting, shared by every replica.
func (m *appMetrics) registerNotifier(st *store.Redis, hooks *webhook.Service) {
	m.reg.MustRegister(&backlogCollector{st: st, hooks: hooks})
}

// registerHTTP instruments the public handler and adds its connection
// gauges; routes are its patterns ("GET /v1/confirm").
func (m *appMetrics) registerHTTP(ln *connlimit.Listener, maxConns int, routes []string, h http.Handler) http.Handler {
	m.reg.MustRegister(&connCollector{ln: ln, max: maxConns})
	for _, r := range append(routes, "other") {
		for _, c := range httpClasses {
			m.httpRequests.WithLabelValues(r, c)
		}
		m.httpDuration.WithLabelValues(r)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			// The mux set r.Pattern on this very request when it routed it.
			route := strings.TrimSuffix(r.Pattern, "{$}")
			if route == "" || route == "/" {
				route = "other"
			}
			code := sw.code
			if code == 0 {
				code = http.StatusOK
			}
			m.httpRequests.WithLabelValues(route, strconv.Itoa(min(max(code/100, 2), 5))+"xx").Inc()
			m.httpDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(sw, r)
	})
}

// statusWriter notes the status code a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// redisHook counts failed Redis commands. A missing key, a script not
// loaded yet (go-redis loads it and retries), a caller that gave up and the
// optional CLIENT subcommands of the connection handshake are not errors
// of Redis.
type redisHook struct{ errs prometheus.Counter }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		// go-redis's connection handshake tries optional CLIENT
		// subcommands that a plain Redis refuses: not failures.
		if redisFailure(err) && cmd.Name() != "client" {
			h.errs.Inc()
		}
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if redisFailure(c.Err()) && c.Name() != "client" {
				h.errs.Inc() // once for the pipeline
				break
			}
		}
		return err
	}
}

func redisFailure(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && !errors.Is(err, context.Canceled) &&
		!errors.Is(err, redis.TxFailedErr) && !redis.HasErrorPrefix(err, "NOSCRIPT")
}

// backlogCollector reads what waits in Redis at each scrape.
type backlogCollector struct {
	st    *store.Redis
	hooks *webhook.Service // nil: no webhook gauges
}

var (
	descScheduled = prometheus.NewDesc("jobalert_digests_scheduled",
		"Subscriptions with a digest scheduled (daily and weekly always, instant while a window is open).", nil, nil)
	descDue = prometheus.NewDesc("jobalert_digests_due",
		"Digests due now and not yet claimed by a notifier.", nil, nil)
	descOverdue = prometheus.NewDesc("jobalert_digests_overdue_seconds",
		"How late the most overdue unclaimed digest is; 0 when none is due.", nil, nil)
	descOutbox = prometheus.NewDesc("jobalert_outbox_digests",
		"Claimed digests not yet sent: being sent, or waiting for a retry after a temporary failure.", nil, nil)
	descPending = prometheus.NewDesc("jobalert_pending_items",
		"Matched jobs waiting in the pending lists of scheduled subscriptions (estimated from a sample of 1000 lists past 1000 subscriptions).", nil, nil)
	descRecording = prometheus.NewDesc("jobalert_recording_marks",
		"Marks of jobs being recorded (docs/redis.md); a mark older than minutes holds newer alerts back.", nil, nil)
	descWebhookQueued = prometheus.NewDesc("jobalert_webhook_queued",
		"Webhook deliveries waiting for an attempt (scheduled, retrying or in flight).", nil, nil)
	descWebhookDue = prometheus.NewDesc("jobalert_webhook_due",
		"Webhook deliveries due now and not yet claimed.", nil, nil)
	descWebhookDead = prometheus.NewDesc("jobalert_webhook_dead_letters_kept",
		"Webhook dead letters kept for replay (30 days).", nil, nil)
	descCircuits = prometheus.NewDesc("jobalert_webhook_circuits_open",
		"Webhook endpoints whose circuit breaker is open now (their deliveries wait without attempts).", nil, nil)
)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descScheduled, descDue, descOverdue, descOutbox, descPending, descRecording,
		descWebhookQueued, descWebhookDue, descWebhookDead, descCircuits} {
		ch <- d
	}
}

// Collect reads Redis; a failed read (counted by the Redis hook) leaves its
// values out of this scrape.
func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), sampleTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	if b, err := c.st.Backlog(ctx, time.Now()); err == nil {
		gauge(descScheduled, float64(b.Scheduled))
		gauge(descDue, float64(b.Due))
		gauge(descOverdue, b.OldestDue.Seconds())
		gauge(descOutbox, float64(b.Outbox))
		gauge(descPending, float64(b.PendingItems))
		gauge(descRecording, float64(b.Recording))
	}
	if c.hooks == nil {
		return
	}
	if b, err := c.hooks.Backlog(ctx); err == nil {
		gauge(descWebhookQueued, float64(b.Queued))
		gauge(descWebhookDue, float64(b.Due))
		gauge(descWebhookDead, float64(b.DeadLetters))
		gauge(descCircuits, float64(b.CircuitsOpen))
	}
}

// connCollector reports the public listener's connections.
type connCollector struct {
	ln  *connlimit.Listener
	max int
}

var (
	descConns = prometheus.NewDesc("jobalert_http_connections",
		"Connections the public listener holds open, by state (open: all of them; idle: of which between requests).", []string{"state"}, nil)
	descConnsMax = prometheus.NewDesc("jobalert_http_connections_max",
		"The bound on open connections (JOBALERT_HTTP_MAX_CONNS).", nil, nil)
	descIdleClosed = prometheus.NewDesc("jobalert_http_connections_idle_closed_total",
		"Idle connections closed to make room for new ones.", nil, nil)
	descRejected = prometheus.NewDesc("jobalert_http_connections_rejected_total",
		"Connections refused (429) because their address held JOBALERT_HTTP_MAX_CONNS_PER_IP busy ones.", nil, nil)
	descWaits = prometheus.NewDesc("jobalert_http_connection_waits_total",
		"New connections that waited because JOBALERT_HTTP_MAX_CONNS busy ones were open.", nil, nil)
)

func (c *connCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConns, descConnsMax, descIdleClosed, descRejected, descWaits} {
		ch <- d
	}
}

func (c *connCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.ln.Stats()
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(st.Open), "open")
	ch <- prometheus.MustNewConstMetric(descConns, prometheus.GaugeValue, float64(st.Idle), "idle")
	ch <- prometheus.MustNewConstMetric(descConnsMax, prometheus.GaugeValue, float64(c.max))
	ch <- prometheus.MustNewConstMetric(descIdleClosed, prometheus.CounterValue, float64(st.IdleClosed))
	ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(st.Rejected))
	ch <- prometheus.MustNewConstMetric(descWaits, prometheus.CounterValue, float64(st.Waits))
}
