package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// BacklogCollector reports the durable consumer's backlog and the streams'
// sizes as JetStream sees them, read at each scrape (consumer and stream
// info): what every replica shares, so each reports the same values.
type BacklogCollector struct {
	js      jetstream.JetStream
	cfg     StreamConfig
	timeout time.Duration
	onError func(error)

	pending, ackPending, redelivered, age *prometheus.Desc
	msgs, bytes                           *prometheus.Desc
}

// NewBacklogCollector reads the backlog of cfg's consumer and streams
// through js, each scrape within timeout (default 2s). onError, if set, is
// told of each failed read; that scrape then leaves the values it could
// not read out.
func NewBacklogCollector(js jetstream.JetStream, cfg StreamConfig, timeout time.Duration, onError func(error)) *BacklogCollector {
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	return &BacklogCollector{
		js: js, cfg: cfg.withDefaults(), timeout: timeout, onError: onError,
		pending: prometheus.NewDesc("jobalert_consumer_pending",
			"Events in the stream not yet delivered to the durable consumer (its Num Pending).", nil, nil),
		ackPending: prometheus.NewDesc("jobalert_consumer_ack_pending",
			"Events delivered and not yet acked (Ack Pending).", nil, nil),
		redelivered: prometheus.NewDesc("jobalert_consumer_redelivered",
			"Events delivered more than once and not yet acked (Redelivered).", nil, nil),
		age: prometheus.NewDesc("jobalert_consumer_backlog_age_seconds",
			"Age of the oldest event not yet acked; 0 with no backlog. Events older than the stream's max age are removed unconsumed.", nil, nil),
		msgs: prometheus.NewDesc("jobalert_stream_messages",
			"Messages held by a stream (the events stream and the DLQ).", []string{"stream"}, nil),
		bytes: prometheus.NewDesc("jobalert_stream_bytes",
			"Bytes held by a stream.", []string{"stream"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (b *BacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{b.pending, b.ackPending, b.redelivered, b.age, b.msgs, b.bytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (b *BacklogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	fail := func(err error) {
		if b.onError != nil {
			b.onError(err)
		}
	}
	var events jetstream.Stream
	for _, name := range []string{b.cfg.Stream, b.cfg.DLQStream} {
		s, err := b.js.Stream(ctx, name)
		if err != nil {
			fail(fmt.Errorf("stream info %s: %w", name, err))
			continue
		}
		if name == b.cfg.Stream {
			events = s
		}
		st := s.CachedInfo().State
		ch <- prometheus.MustNewConstMetric(b.msgs, prometheus.GaugeValue, float64(st.Msgs), name)
		ch <- prometheus.MustNewConstMetric(b.bytes, prometheus.GaugeValue, float64(st.Bytes), name)
	}
	cons, err := b.js.Consumer(ctx, b.cfg.Stream, b.cfg.Consumer)
	if err != nil {
		fail(fmt.Errorf("consumer info %s/%s: %w", b.cfg.Stream, b.cfg.Consumer, err))
		return
	}
	info := cons.CachedInfo()
	ch <- prometheus.MustNewConstMetric(b.pending, prometheus.GaugeValue, float64(info.NumPending))
	ch <- prometheus.MustNewConstMetric(b.ackPending, prometheus.GaugeValue, float64(info.NumAckPending))
	ch <- prometheus.MustNewConstMetric(b.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered))
	age := 0.0
	if (info.NumPending > 0 || info.NumAckPending > 0) && events != nil {
		// The oldest event not acked is the first one past the ack floor.
		m, err := events.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(subjectsAll))
		if err != nil {
			fail(fmt.Errorf("oldest unacked event of %s: %w", b.cfg.Stream, err))
			return
		}
		age = max(0, time.Since(m.Time).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(b.age, prometheus.GaugeValue, age)
}
