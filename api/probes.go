package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/jobalert/jobalert/internal/redact"
)

// Probes serves GET /healthz, /readyz and /metrics alone, the way Server
// does, for a listener of their own (JOBALERT_METRICS_ADDR) that keeps
// answering when the public one is busy. ready may be nil (always ready);
// metrics may be nil (/metrics answers 404).
func Probes(ready func(ctx context.Context) error, metrics http.Handler, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", readyz(ready, log))
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

// healthz answers 200 while the process serves HTTP.
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers {"status":"ready"}, or 503 with
// {"status":"unavailable","failing":["redis", ...]}: the names of the parts
// that are not ready (Unready), never the error text, which may name hosts,
// users or internal addresses and goes to the log only.
func readyz(ready func(ctx context.Context) error, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			defer cancel()
			if err := ready(ctx); err != nil {
				failing := unreadyParts(err)
				log.Warn("not ready", "failing", failing, "err", redact.Error(err))
				writeJSON(w, http.StatusServiceUnavailable, struct {
					Status  string   `json:"status"`
					Failing []string `json:"failing"`
				}{"unavailable", failing})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}
