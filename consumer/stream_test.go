package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/testenv"
)

func TestEnsureStreamsIsIdempotent(t *testing.T) {
	nc := testenv.NATSConn(t, testenv.NATS(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cfg := consumer.StreamConfig{Stream: "EVENTS", DLQStream: "EVENTS_DLQ", Consumer: "replicas"}
	for range 2 {
		if err := consumer.EnsureStreams(ctx, js, cfg); err != nil {
			t.Fatalf("EnsureStreams: %v", err)
		}
	}
	publish(t, js, "jobs.created", jobBody("j1", "Backend Engineer"))

	// A changed setting is applied to the existing consumer; data is kept.
	cfg.AckWait = 45 * time.Second
	if err := consumer.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("EnsureStreams with a new ack wait: %v", err)
	}

	for _, tt := range []struct{ name, subject string }{{"EVENTS", "jobs.>"}, {"EVENTS_DLQ", "jobs_dlq.>"}} {
		s, err := js.Stream(ctx, tt.name)
		if err != nil {
			t.Fatalf("stream %s: %v", tt.name, err)
		}
		c := s.CachedInfo().Config
		if len(c.Subjects) != 1 || c.Subjects[0] != tt.subject || c.Storage != jetstream.FileStorage ||
			c.Retention != jetstream.LimitsPolicy || c.Duplicates != 2*time.Minute {
			t.Errorf("stream %s: subjects %v storage %v retention %v duplicates %v", tt.name, c.Subjects, c.Storage, c.Retention, c.Duplicates)
		}
	}
	s, _ := js.Stream(ctx, "EVENTS")
	if got := s.CachedInfo().State.Msgs; got != 1 {
		t.Errorf("EVENTS holds %d messages after re-ensuring, want 1", got)
	}

	cons, err := js.Consumer(ctx, "EVENTS", "replicas")
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	c := cons.CachedInfo().Config
	if c.Durable != "replicas" || c.AckPolicy != jetstream.AckExplicitPolicy || c.MaxDeliver != -1 ||
		c.AckWait != 45*time.Second || c.FilterSubject != "jobs.>" || c.MaxAckPending < 1000 || c.DeliverPolicy != jetstream.DeliverAllPolicy {
		t.Errorf("consumer config: %+v", c)
	}
	if n := cons.CachedInfo().NumPending; n != 1 {
		t.Errorf("consumer pending %d, want 1", n)
	}
}

// The retention limits land on both streams, at creation and on an
// existing stream; zero limits mean none.
func TestEnsureStreamsAppliesRetention(t *testing.T) {
	nc := testenv.NATSConn(t, testenv.NATS(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type limits struct {
		age   time.Duration
		bytes int64
	}
	check := func(step, name string, want limits) {
		t.Helper()
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("%s: stream %s: %v", step, name, err)
		}
		c := s.CachedInfo().Config
		if got := (limits{c.MaxAge, c.MaxBytes}); got != want || c.Discard != jetstream.DiscardOld {
			t.Errorf("%s: stream %s: got max age %v, max bytes %d, discard %v; want %v, %d, discard old",
				step, name, got.age, got.bytes, c.Discard, want.age, want.bytes)
		}
	}

	// Zero: no limits.
	cfg := consumer.StreamConfig{Stream: "EVENTS", DLQStream: "EVENTS_DLQ", Consumer: "c"}
	if err := consumer.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	check("zero", "EVENTS", limits{0, -1})
	check("zero", "EVENTS_DLQ", limits{0, -1})
	publish(t, js, "jobs.created", jobBody("j1", "Backend Engineer"))

	// The existing streams take the new limits and keep their data.
	cfg.MaxAge, cfg.MaxBytes = 7*24*time.Hour, 1<<30
	cfg.DLQMaxAge, cfg.DLQMaxBytes = 30*24*time.Hour, 64<<20
	if err := consumer.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	check("updated", "EVENTS", limits{7 * 24 * time.Hour, 1 << 30})
	check("updated", "EVENTS_DLQ", limits{30 * 24 * time.Hour, 64 << 20})
	s, err := js.Stream(ctx, "EVENTS")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != 1 {
		t.Errorf("EVENTS after the update: got %d messages, want 1", got)
	}
}
