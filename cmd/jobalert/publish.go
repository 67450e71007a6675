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
	"github.com/jobalert/jobalert/internal/connect"
	"github.com/jobalert/jobalert/internal/redact"
)

// runPublish publishes a JSONL file of job events to the JOBS stream, or
// with --check only checks it.
func runPublish(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("publish", "publish [--subject jobs.created] [--quiet] [--check] FILE|-\n\n"+
		"Publishes job events, one JSON object a line, to JetStream (docs/events.md).\n"+
		"With --check, checks every line as the consumer would and publishes nothing:\n"+
		"one line per error or warning on stdout, then a summary; exit 1 when a line is invalid.", stdout, stderr)
	subject := fs.String("subject", "jobs.created", "subject to publish on (jobs.created, jobs.updated, jobs.closed)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	check := fs.Bool("check", false, "check the events without connecting to NATS or publishing")
	if err := parseFlags(fs, args, 1, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	if _, err := consumer.KindOf(*subject); err != nil {
		fmt.Fprintf(stderr, "jobalert publish: --subject %q: want %s, %s or %s\n", *subject,
			consumer.SubjectCreated, consumer.SubjectUpdated, consumer.SubjectClosed)
		return errUsage
	}
	name := fs.Arg(0)
	in := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	if *check {
		return checkEvents(in, name, *subject, stdout)
	}
	cfg, err := config.Load(getenv, false)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	opts, err := connect.NATSOptions(cfg)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(cfg.NATSURL, append(opts, nats.Name("jobalert publish"))...)
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

// checkEvents is publish --check: every line of in decoded as the consumer
// decodes an event on subject, each finding printed as
// "FILE:LINE: field "title": required", then a summary line.
func checkEvents(in io.Reader, name, subject string, stdout io.Writer) error {
	if name == "-" {
		name = "stdin"
	}
	res, err := consumer.Check(in, subject, func(f consumer.Finding) {
		if f.Err != nil {
			fmt.Fprintf(stdout, "%s:%d: %v\n", name, f.Line, f.Err)
		} else {
			fmt.Fprintf(stdout, "%s:%d: warning: %s\n", name, f.Line, f.Warning)
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d %s checked as %s: %d valid, %d invalid, %d %s\n", name,
		res.Events, plural(res.Events, "event", "events"), subject, res.Events-res.Invalid, res.Invalid,
		res.Warnings, plural(res.Warnings, "warning", "warnings"))
	if res.Invalid > 0 {
		return errReported
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
