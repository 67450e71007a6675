package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for StreamConfig and Config.
const (
	DefaultStream    = "JOBS"
	DefaultDLQStream = "JOBS_DLQ"
	DefaultConsumer  = "jobalert"
	// DefaultAckWait is short so that the events a replica killed with -9
	// held are redelivered within 10 s (fault scenarios 1, 2 and 10 need
	// every alert within 30 s of the kill); a live replica keeps its
	// batches with InProgress every third of it, so a slow batch is not
	// redelivered meanwhile.
	DefaultAckWait       = 10 * time.Second
	DefaultMaxAckPending = 20000
	// DuplicateWindow is the publish-side dedup window of both streams.
	DuplicateWindow = 2 * time.Minute

	subjectsAll = "jobs.>"
	dlqPrefix   = "jobs_dlq."
	dlqAll      = "jobs_dlq.>"
)

// StreamConfig names and shapes the streams and the durable consumer that
// EnsureStreams creates. Zero fields take the defaults above.
type StreamConfig struct {
	Stream    string // the events stream, subjects jobs.>; default JOBS
	DLQStream string // the dead-letter stream, subjects jobs_dlq.>; default JOBS_DLQ
	Consumer  string // the durable pull consumer shared by every replica; default jobalert
	Replicas  int    // stream replicas (1 on a single server, 3 on a cluster); default 1
	// MaxAge bounds how long events are kept in the events stream (limits
	// retention: an event older than this is removed, consumed or not); 0
	// keeps them until MaxBytes applies. MaxBytes bounds the stream's size:
	// past it the oldest events are removed; 0 or less is no bound.
	MaxAge   time.Duration
	MaxBytes int64
	// DLQMaxAge and DLQMaxBytes are the same bounds for the dead-letter
	// stream.
	DLQMaxAge   time.Duration
	DLQMaxBytes int64
	// AckWait is how long a delivered message may stay unacked before
	// NATS redelivers it; the Consumer extends it with InProgress while a
	// batch is being worked on. Default 10s (DefaultAckWait).
	AckWait time.Duration
	// MaxAckPending bounds the messages delivered and not yet acked over
	// all replicas; it must exceed replicas × batch size. Default 20000.
	MaxAckPending int
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.DLQStream == "" {
		c.DLQStream = DefaultDLQStream
	}
	if c.Consumer == "" {
		c.Consumer = DefaultConsumer
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = DefaultMaxAckPending
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = -1
	}
	if c.DLQMaxBytes <= 0 {
		c.DLQMaxBytes = -1
	}
	if c.MaxAge < 0 {
		c.MaxAge = 0
	}
	if c.DLQMaxAge < 0 {
		c.DLQMaxAge = 0
	}
	return c
}

// EnsureStreams creates, or updates to the configuration below, the events
// stream (subjects jobs.>), the dead-letter stream (subjects jobs_dlq.>),
// both with file storage, limits retention (MaxAge, MaxBytes; the oldest
// messages go first) and a 2-minute duplicate window, and the durable pull consumer on the events stream: explicit
// ack, unlimited deliveries (NATS never drops a message; poison is
// terminated by the Consumer) and a filter of jobs.>. It is idempotent and
// safe for every replica to call at start; an existing stream takes the
// limits given (a lower one removes what is past it at once).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	cfg = cfg.withDefaults()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "jobalert job events",
		Subjects:    []string{subjectsAll},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  DuplicateWindow,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		Replicas:    cfg.Replicas,
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", cfg.Stream, err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.DLQStream,
		Description: "jobalert poison events, with the reason in the Jobalert-Error header",
		Subjects:    []string{dlqAll},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  DuplicateWindow,
		MaxAge:      cfg.DLQMaxAge,
		MaxBytes:    cfg.DLQMaxBytes,
		Replicas:    cfg.Replicas,
	}); err != nil {
		return fmt.Errorf("ensure stream %s: %w", cfg.DLQStream, err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, cfg.Stream, jetstream.ConsumerConfig{
		Durable:       cfg.Consumer,
		Description:   "jobalert: shared by every replica",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: cfg.MaxAckPending,
		FilterSubject: subjectsAll,
	}); err != nil {
		return fmt.Errorf("ensure consumer %s on %s: %w", cfg.Consumer, cfg.Stream, err)
	}
	return nil
}
