package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jobalert/jobalert/api"
)

// newAPI builds the HTTP API, pages and probes over the app's parts.
func (a *app) newAPI() (*api.Server, error) {
	deps := api.Deps{
		Store: a.store, Tokens: a.signer, Renderer: a.render, Mailer: a.mailer, Webhooks: a.hooks,
		Ready: a.ready, Emails: a.m.notifier, Logger: a.log,
	}
	if a.cfg.MetricsAddr == "" {
		// Without a metrics listener of its own, /metrics is public.
		deps.Metrics = a.metricsHandler()
	}
	if a.digester != nil {
		deps.Digests = a.digester
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
