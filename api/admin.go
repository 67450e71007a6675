package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/webhook"
)

// getSubscription is GET /v1/subscriptions/{id} (admin).
func (s *Server) getSubscription(w http.ResponseWriter, r *http.Request) {
	sub, err := s.deps.Store.GetSubscription(r.Context(), r.PathValue("id"))
	if err != nil {
		s.adminStoreError(w, "get subscription", err)
		return
	}
	out, err := s.subscriptionOut(r.Context(), sub)
	if err != nil {
		s.adminStoreError(w, "channel links", err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteSubscription is DELETE /v1/subscriptions/{id} (admin): the
// subscription, its pending items, its webhook endpoint and its feed.
func (s *Server) deleteSubscription(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sub, err := s.deps.Store.GetSubscription(r.Context(), id)
	if err != nil {
		s.adminStoreError(w, "get subscription", err)
		return
	}
	if err := s.deleteWebhook(r, sub); err != nil {
		s.adminStoreError(w, "delete webhook", err)
		return
	}
	if err := s.deleteFeed(r.Context(), id); err != nil {
		s.adminStoreError(w, "delete feed", err)
		return
	}
	if err := s.deps.Store.DeleteSubscription(r.Context(), id); err != nil {
		s.adminStoreError(w, "delete subscription", err)
		return
	}
	s.log.Info("subscription deleted", "subscription", id, "by", "admin")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminStoreError(w http.ResponseWriter, op string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, codeNotFound, "no such subscription", nil)
		return
	}
	s.log.Error("admin call failed", "op", op, "err", err)
	writeError(w, http.StatusServiceUnavailable, codeUnavailable, op+" failed: "+err.Error(), nil)
}

// runDigests is POST /v1/admin/digests/run with {"now":"RFC 3339"}: every
// digest due at that instant, sent synchronously, exactly as the scheduler
// does. An empty body or no "now" means the current time.
func (s *Server) runDigests(w http.ResponseWriter, r *http.Request) {
	if s.deps.Digests == nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the digest engine does not run in this process", nil)
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		bodyError(w, err)
		return
	}
	now := s.cfg.Clock()
	if len(body) > 0 {
		var req struct {
			Now string `json:"now"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, codeInvalid, "the body must be {\"now\":\"<RFC 3339 time>\"}", nil)
			return
		}
		if req.Now != "" {
			if now, err = time.Parse(time.RFC3339, req.Now); err != nil {
				writeError(w, http.StatusBadRequest, codeInvalid, "invalid field(s)",
					map[string]string{"now": "must be an RFC 3339 time such as 2026-11-27T08:00:00-08:00"})
				return
			}
		}
	}
	res, err := s.deps.Digests.RunDue(r.Context(), now)
	if err != nil {
		s.log.Error("admin digest run failed", "now", now, "err", err)
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "digest run failed: "+err.Error(), nil)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// deadLetter is one dead-lettered webhook delivery as the admin API shows it.
type deadLetter struct {
	ID             string    `json:"id"`
	SubscriptionID string    `json:"subscription_id"`
	Attempts       int       `json:"attempts"`
	LastStatus     int       `json:"last_status,omitempty"`
	LastError      string    `json:"last_error,omitempty"`
	URL            string    `json:"url,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	LastAttempt    time.Time `json:"last_attempt,omitzero"`
	CreatedAt      time.Time `json:"created_at,omitzero"`
	DiedAt         time.Time `json:"died_at,omitzero"`
}

// deadLetters is GET /v1/admin/webhooks/dead-letters?limit=N (default 100,
// at most 1000), newest first.
func (s *Server) deadLetters(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "webhooks are not enabled on this server", nil)
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, codeInvalid, "invalid field(s)", map[string]string{"limit": "must be a whole number from 1 to 1000"})
			return
		}
		limit = n
	}
	dls, err := s.deps.Webhooks.DeadLetters(r.Context(), limit)
	if err != nil {
		s.log.Error("list dead letters", "err", err)
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "could not list dead letters", nil)
		return
	}
	out := make([]deadLetter, 0, len(dls))
	for _, d := range dls {
		out = append(out, deadLetter{ID: d.ID, SubscriptionID: d.SubscriptionID, Attempts: d.Attempts, LastStatus: d.LastStatus,
			LastError: d.LastError, URL: d.URL, Reason: d.DeadReason, LastAttempt: d.LastAttempt, CreatedAt: d.CreatedAt, DiedAt: d.DiedAt})
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead_letters": out})
}

// replayDeadLetter is POST /v1/admin/webhooks/dead-letters/{id}/replay.
func (s *Server) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	if s.deps.Webhooks == nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "webhooks are not enabled on this server", nil)
		return
	}
	id := r.PathValue("id")
	err := s.deps.Webhooks.Replay(r.Context(), id)
	switch {
	case err == nil:
		s.log.Info("dead letter replayed", "delivery", id)
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "state": webhook.StateQueued})
	case errors.Is(err, webhook.ErrNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, "no such delivery", nil)
	case errors.Is(err, webhook.ErrNotDeadLetter):
		writeError(w, http.StatusConflict, codeConflict, "the delivery is not a dead letter", nil)
	case errors.Is(err, webhook.ErrEndpointDisabled):
		writeError(w, http.StatusConflict, codeConflict, "the subscription's webhook endpoint is missing or disabled", nil)
	default:
		s.log.Error("replay dead letter", "delivery", id, "err", err)
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "could not replay the delivery", nil)
	}
}
