package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jobalert/jobalert/token"
)

// handler builds the HTTP API, pages and probes.
func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := a.ready(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	return mux
}

// tokenLinks builds the links every email carries.
type tokenLinks struct {
	base   string
	signer *token.Signer
}

func (a *app) links() tokenLinks { return tokenLinks{base: a.cfg.PublicURL, signer: a.signer} }

func (l tokenLinks) Unsubscribe(subID string) string {
	return l.base + "/v1/unsubscribe?token=" + l.signer.Issue(token.Unsubscribe, subID, time.Time{})
}

func (l tokenLinks) Manage(subID string) string {
	return l.base + "/v1/manage?token=" + l.signer.Issue(token.Manage, subID, time.Time{})
}
