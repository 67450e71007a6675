package api

import (
	"context"
	"net/http"
	"time"
)

// Probes serves GET /healthz, /readyz and /metrics alone, the way Server
// does, for a listener of their own (JOBALERT_METRICS_ADDR) that keeps
// answering when the public one is busy. ready may be nil (always ready);
// metrics may be nil (/metrics answers 404).
func Probes(ready func(ctx context.Context) error, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", readyz(ready))
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}

// healthz answers 200 while the process serves HTTP.
func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when ready (nil: always) returns nil within 3s, and
// 503 with its error otherwise.
func readyz(ready func(ctx context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ready != nil {
			ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
			defer cancel()
			if err := ready(ctx); err != nil {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}
