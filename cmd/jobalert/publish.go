package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobalert/jobalert/config"
	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/internal/redact"
)

// runPublish publishes a JSONL file of job events to the JOBS stream.
func runPublish(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("publish", "publish [--subject jobs.created] [--quiet] FILE|-\n\nPublishes job events, one JSON object a line, to JetStream.", stdout, stderr)
	subject := fs.String("subject", "jobs.created", "subject to publish on (jobs.created, jobs.updated, jobs.closed)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, args, 1, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(getenv, false)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	in := stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.Name("jobalert publish"))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", redact.URLs(cfg.NATSURL), redact.Wrap(err))
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if err := consumer.EnsureStreams(ctx, js, consumer.StreamConfig{Stream: cfg.Stream, Consumer: cfg.Durable, Replicas: cfg.StreamReplicas}); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	var progress io.Writer = stderr
	if *quiet {
		progress = nil
	}
	n, err := consumer.Publish(ctx, js, in, *subject, progress)
	fmt.Fprintf(stdout, "published %d events to %s\n", n, *subject)
	return err
}
