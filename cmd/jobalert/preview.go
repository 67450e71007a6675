package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/preview"
	"github.com/jobalert/jobalert/store"
)

// previewOverlap is how far before the end of the record scan the preview
// starts reading the stream: an event recorded during the scan is read
// again, which Put makes harmless.
const previewOverlap = 5 * time.Minute

// followPreview fills a.recent, the live preview's jobs (api role): the
// open job records of the last 30 days (store.ScanRecentJobs), then every
// event of the JOBS stream from just before the scan, read by an ordered
// consumer of this process (no durable state) and decoded by the
// consumer's decoder; closed jobs leave, and jobs older than the horizon
// are dropped every few minutes. Errors are retried until ctx is done.
func (a *app) followPreview(ctx context.Context) error {
	log := a.log.With("component", "preview")
	delay := time.Second
	retry := func(what string, err error) bool {
		log.Warn("live preview: "+what+" failed; retrying", "err", err, "in", delay)
		t := time.NewTimer(delay)
		defer t.Stop()
		delay = min(2*delay, time.Minute)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	start := time.Now()
	for {
		err := a.store.ScanRecentJobs(ctx, start.Add(-preview.Horizon), func(j *matcher.Job, first time.Time) error {
			a.recent.Put(j, first)
			return nil
		})
		if err == nil {
			break
		}
		if ctx.Err() != nil || !retry("loading the job records", err) {
			return nil
		}
	}
	log.Info("live preview loaded", "jobs", a.recent.Len(), "took", time.Since(start).Round(time.Millisecond))

	from := start.Add(-previewOverlap)
	var cc jetstream.ConsumeContext
	for cc == nil {
		c, err := a.js.OrderedConsumer(ctx, a.cfg.Stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{"jobs.>"}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from,
		})
		if err == nil {
			cc, err = c.Consume(a.previewEvent)
		}
		if err != nil && (ctx.Err() != nil || !retry("reading the JOBS stream", fmt.Errorf("ordered consumer: %w", err))) {
			return nil
		}
	}
	defer cc.Stop()
	tick := time.NewTicker(5 * time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			a.recent.Expire(now)
		}
	}
}

// previewEvent applies one JOBS event to the live preview. A bad event is
// skipped (the consumer role dead-letters it).
func (a *app) previewEvent(msg jetstream.Msg) {
	ev, err := consumer.DecodeEvent(msg.Subject(), msg.Data())
	if err != nil {
		return
	}
	seen := time.Now()
	if meta, err := msg.Metadata(); err == nil {
		seen = meta.Timestamp
	}
	if ev.Kind == jobevent.Closed {
		a.recent.Remove(ev.Job.ID)
		return
	}
	// A repost counts once in the preview, as the consumer records it.
	var aliases []string
	if a.cfg.RepostWindow > 0 {
		for reason, v := range store.RepostAliases(&ev.Job) {
			aliases = append(aliases, string(reason)+"\x00"+v)
		}
	}
	a.recent.PutAliased(&ev.Job, seen, aliases)
}
