package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jobalert/jobalert/consumer"
)

// gauge reads one gauge series of reg: name and, optionally, its stream
// label; ok is false when the series is missing.
func gauge(t *testing.T, reg *prometheus.Registry, name, stream string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if stream == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == stream) {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func TestBacklogCollectorReadsJetStream(t *testing.T) {
	js := mustJetStream(t)
	var errs []error
	reg := prometheus.NewRegistry()
	reg.MustRegister(consumer.NewBacklogCollector(js, consumer.StreamConfig{}, 0, func(err error) { errs = append(errs, err) }))
	want := func(step string, pending, ackPending, msgs float64, aged bool) {
		t.Helper()
		for _, g := range []struct {
			name, stream string
			want         float64
		}{
			{"jobalert_consumer_pending", "", pending},
			{"jobalert_consumer_ack_pending", "", ackPending},
			{"jobalert_consumer_redelivered", "", 0},
			{"jobalert_stream_messages", "JOBS", msgs},
			{"jobalert_stream_messages", "JOBS_DLQ", 0},
		} {
			if got, ok := gauge(t, reg, g.name, g.stream); !ok || got != g.want {
				t.Errorf("%s: %s{%s}: got %v (present %v), want %v", step, g.name, g.stream, got, ok, g.want)
			}
		}
		age, ok := gauge(t, reg, "jobalert_consumer_backlog_age_seconds", "")
		if !ok || (aged && (age <= 0 || age > 60)) || (!aged && age != 0) {
			t.Errorf("%s: backlog age: got %v (present %v), want %s", step, age, ok, map[bool]string{true: "0 < age < 60", false: "0"}[aged])
		}
	}

	want("empty", 0, 0, 0, false)
	for _, id := range []string{"j1", "j2", "j3"} {
		publish(t, js, "jobs.created", jobBody(id, "Backend Engineer"))
	}
	// The consumer's pending count follows the stream asynchronously: a
	// busy machine can read it before it has counted the three.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		if got, _ := gauge(t, reg, "jobalert_consumer_pending", ""); got == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	want("three published", 3, 0, 3, true)

	cons, err := js.Consumer(context.Background(), "JOBS", "jobalert")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 3 {
		t.Fatalf("fetched %d messages, want 3", len(msgs))
	}
	want("three delivered", 0, 3, 3, true)
	for _, m := range msgs {
		if err := m.DoubleAck(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	want("three acked", 0, 0, 3, false)
	if len(errs) != 0 {
		t.Errorf("read errors: got %v, want none", errs)
	}
	missing := prometheus.NewRegistry()
	missing.MustRegister(consumer.NewBacklogCollector(js, consumer.StreamConfig{Consumer: "missing"}, 0, func(err error) { errs = append(errs, err) }))
	mfs, err := missing.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	if n != 4 || len(errs) != 1 {
		t.Errorf("a missing consumer: got %d series and errors %v, want the 4 stream series and one error", n, errs)
	}
}
