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
