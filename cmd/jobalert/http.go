package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jobalert/jobalert/api"
	"github.com/jobalert/jobalert/consumer"
)

// newAPI builds the HTTP API, pages and probes over the app's parts.
func (a *app) newAPI() (*api.Server, error) {
	deps := api.Deps{
		Store: a.store, Tokens: a.signer, Renderer: a.render, Mailer: a.mailer, Webhooks: a.hooks,
		Ready: a.ready, Emails: a.m.notifier, Logger: a.log,
	}
	if a.recent != nil {
		deps.Preview = a.recent
	}
	if a.cfg.MetricsAddr == "" {
		// Without a metrics listener of its own, /metrics is public.
		deps.Metrics = a.metricsHandler()
	}
	if a.digester != nil {
		deps.Digests = a.digester
	}
	if a.js != nil {
		deps.DLQ = jobsDLQ{consumer.NewDLQ(a.js, consumer.StreamConfig{Stream: a.cfg.Stream})}
	}
	if a.feeds != nil {
		deps.Feeds, deps.FeedHandler = a.feeds, a.feedHTTP
	}
	if a.tgLinks != nil { // a nil *telegramLinks in the interface would not be nil
		deps.Telegram = a.tgLinks
	}
	return api.New(api.Config{
		PublicURL: a.cfg.PublicURL, AdminToken: a.cfg.AdminToken, ConfirmTTL: a.cfg.ConfirmTTL,
		SubscriptionsPerEmail: a.cfg.SubscriptionsPerEmail, ConfirmationsPerHour: a.cfg.ConfirmationsPerHour,
		ConfirmationsPerIPPerHour: a.cfg.ConfirmationsPerIPPerHour, WebhookAllowPrivate: a.cfg.WebhookAllowPrivate,
		ConfirmationsPerHourTotal: a.cfg.ConfirmationsPerHourTotal, AllowedOrigins: a.cfg.AllowedOrigins,
		ManageTTL: a.cfg.ManageTTL, TrustProxy: a.cfg.TrustProxy,
	}, deps)
}

// links makes the unsubscribe and manage links of every email.
func (a *app) links() *api.Links {
	return api.NewLinks(a.cfg.PublicURL, a.signer, api.LinkTTLs{Confirm: a.cfg.ConfirmTTL, Manage: a.cfg.ManageTTL}, nil)
}

// metricsHandler serves the registry in the Prometheus text format.
func (a *app) metricsHandler() http.Handler {
	return promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{})
}

// jobsDLQ adapts consumer.DLQ to the admin API (api does not import the
// consumer).
type jobsDLQ struct{ d *consumer.DLQ }

func (q jobsDLQ) List(ctx context.Context, after uint64, limit int) ([]api.DeadEvent, error) {
	dls, err := q.d.List(ctx, after, limit)
	out := make([]api.DeadEvent, len(dls))
	for i, dl := range dls {
		out[i] = deadEvent(dl)
	}
	return out, err
}

func (q jobsDLQ) Get(ctx context.Context, seq uint64) (api.DeadEvent, error) {
	dl, err := q.d.Get(ctx, seq)
	if err != nil {
		return api.DeadEvent{}, dlqError(err)
	}
	ev := deadEvent(dl)
	ev.SetData(dl.Data)
	return ev, nil
}

func (q jobsDLQ) Replay(ctx context.Context, seq uint64) (string, uint64, error) {
	subject, streamSeq, err := q.d.Replay(ctx, seq)
	return subject, streamSeq, dlqError(err)
}

func deadEvent(dl consumer.DeadLetter) api.DeadEvent {
	return api.DeadEvent{Seq: dl.Seq, Subject: dl.Subject, OriginalSubject: dl.OriginalSubject, Reason: dl.Reason,
		StreamSeq: dl.StreamSeq, MsgID: dl.MsgID, Time: dl.Time, Size: dl.Size}
}

func dlqError(err error) error {
	if errors.Is(err, consumer.ErrDeadLetterNotFound) {
		return api.ErrDeadEventNotFound
	}
	return err
}
