package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jobalert/jobalert/internal/redact"
	"github.com/jobalert/jobalert/store"
)

// JobsDLQ reads and replays the poison job events of the JOBS_DLQ stream;
// cmd/jobalert adapts consumer.DLQ to it.
type JobsDLQ interface {
	// List returns up to limit dead events after sequence after, oldest
	// first, without their data.
	List(ctx context.Context, after uint64, limit int) ([]DeadEvent, error)
	// Get returns one with its data; ErrDeadEventNotFound if none.
	Get(ctx context.Context, seq uint64) (DeadEvent, error)
	// Replay republishes it to the events stream on its original subject
	// and removes it from the DLQ; ErrDeadEventNotFound if none.
	Replay(ctx context.Context, seq uint64) (subject string, streamSeq uint64, err error)
}

// ErrDeadEventNotFound is JobsDLQ's error for a sequence without an event.
var ErrDeadEventNotFound = errors.New("no such event in the DLQ")

// DeadEvent is one poison job event as the admin API shows it.
type DeadEvent struct {
	Seq             uint64    `json:"seq"`
	Subject         string    `json:"subject"`
	OriginalSubject string    `json:"original_subject"`
	Reason          string    `json:"reason"`
	StreamSeq       uint64    `json:"stream_seq,omitempty"`
	MsgID           string    `json:"msg_id,omitempty"`
	Time            time.Time `json:"time"`
	Size            int       `json:"size"`
	// Data is the event as published, when it is valid UTF-8; otherwise
	// DataBase64 holds it. Get only.
	Data       *string `json:"data,omitempty"`
	DataBase64 string  `json:"data_base64,omitempty"`
}

// SetData fills Data or DataBase64 and Size from the event's bytes.
func (d *DeadEvent) SetData(b []byte) {
	d.Size = len(b)
	if utf8.Valid(b) {
		s := string(b)
		d.Data = &s
		return
	}
	d.DataBase64 = base64.StdEncoding.EncodeToString(b)
}

// emailBody reads {"email": "..."}: the address stays out of the URL, so
// out of access logs and proxies' logs. It answers 400 and returns false
// when the body is not that.
func emailBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	body, err := readBody(w, r)
	if err != nil {
		bodyError(w, err)
		return "", false
	}
	var req struct {
		Email string `json:"email"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, codeInvalid, `the body must be {"email":"<address>"}`, nil)
		return "", false
	}
	if a, err := mail.ParseAddress(req.Email); err != nil || a.Address != req.Email || len(req.Email) > 254 {
		writeError(w, http.StatusBadRequest, codeInvalid, "invalid field(s)", map[string]string{"email": "must be an email address"})
		return "", false
	}
	return req.Email, true
}

// searchSubscriptions is POST /v1/admin/subscriptions/search with
// {"email": "..."}: every subscription of the address, and whether it is
// suppressed.
func (s *Server) searchSubscriptions(w http.ResponseWriter, r *http.Request) {
	addr, ok := emailBody(w, r)
	if !ok {
		return
	}
	subs, err := s.deps.Store.SubscriptionsByEmail(r.Context(), addr)
	if err != nil {
		s.adminStoreError(w, "subscriptions by email", err)
		return
	}
	suppressed, err := s.deps.Store.IsSuppressed(r.Context(), addr)
	if err != nil {
		s.adminStoreError(w, "is suppressed", err)
		return
	}
	if subs == nil {
		subs = []*store.Subscription{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"subscriptions": subs, "suppressed": suppressed})
}

// stats is GET /v1/admin/stats: subscriptions by status and frequency,
// pending items, the due schedule, the outbox and the suppression list.
func (s *Server) stats(w http.ResponseWriter, r *http.Request) {
	st, err := s.deps.Store.Stats(r.Context())
	if err != nil {
		s.adminStoreError(w, "stats", err)
		return
	}
	feedback, err := s.deps.Store.UnsubscribeFeedback(r.Context())
	if err != nil {
		s.adminStoreError(w, "unsubscribe feedback", err)
		return
	}
	type subscriptions struct {
		Total                int                       `json:"total"`
		ByStatus             map[string]int            `json:"by_status"`
		ByFrequency          map[string]int            `json:"by_frequency"`
		ByStatusAndFrequency map[string]map[string]int `json:"by_status_and_frequency"`
		WithPendingItems     int                       `json:"with_pending_items"`
	}
	writeJSON(w, http.StatusOK, struct {
		Subscriptions subscriptions `json:"subscriptions"`
		PendingItems  int64         `json:"pending_items"`
		Due           int64         `json:"due"`
		Outbox        int64         `json:"outbox"`
		Suppressed    int64         `json:"suppressed"`
		BounceCounts  int64         `json:"bounce_counts"`
		// UnsubscribeReasons counts the answers of the question after an
		// unsubscribe, and switched_weekly those who took weekly instead.
		UnsubscribeReasons map[string]int64 `json:"unsubscribe_reasons"`
	}{
		Subscriptions: subscriptions{Total: st.Subscriptions, ByStatus: st.ByStatus, ByFrequency: st.ByFrequency,
			ByStatusAndFrequency: st.ByStatusAndFrequency, WithPendingItems: st.SubscriptionsWithPending},
		PendingItems: st.PendingItems, Due: st.Due, Outbox: st.Outbox, Suppressed: st.Suppressed, BounceCounts: st.BounceCounts,
		UnsubscribeReasons: feedback,
	})
}

// suppressions is GET /v1/admin/suppressions: how many addresses are
// suppressed and how many have bounces counted. The entries are keyed
// hashes: there is no address to list.
func (s *Server) suppressions(w http.ResponseWriter, r *http.Request) {
	sup, bounces, err := s.deps.Store.SuppressionCounts(r.Context())
	if err != nil {
		s.adminStoreError(w, "suppression counts", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"suppressed": sup, "bounce_counts": bounces})
}

// liftSuppression is POST /v1/admin/suppressions/lift with
// {"email": "..."}: the address may be mailed again (after a new sign-up
// and its confirmation); its bounce count starts over.
func (s *Server) liftSuppression(w http.ResponseWriter, r *http.Request) {
	addr, ok := emailBody(w, r)
	if !ok {
		return
	}
	lifted, err := s.deps.Store.LiftSuppression(r.Context(), addr)
	if err != nil {
		s.adminStoreError(w, "lift suppression", err)
		return
	}
	s.log.Info("suppression lifted", "email", redact.Address(addr), "was_suppressed", lifted, "by", "admin")
	writeJSON(w, http.StatusOK, map[string]bool{"lifted": lifted})
}

// lookupJob is POST /v1/admin/jobs/lookup with {"id": "..."}: the job the
// id's events are recorded under and why (docs/events.md, Reposts). The id
// goes in the body: job ids may hold any character but control ones.
func (s *Server) lookupJob(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r)
	if err != nil {
		bodyError(w, err)
		return
	}
	var req struct {
		ID string `json:"id"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.ID) == "" {
		writeError(w, http.StatusBadRequest, codeInvalid, "invalid field(s)", map[string]string{"id": "required: the body must be {\"id\":\"<job id>\"}"})
		return
	}
	info, err := s.deps.Store.RepostLookup(r.Context(), strings.TrimSpace(req.ID))
	if err != nil {
		s.adminStoreError(w, "job lookup", err)
		return
	}
	writeJSON(w, http.StatusOK, info)
}

// dlqOrUnavailable returns the DLQ, or answers 503 when this process has
// none.
func (s *Server) dlqOrUnavailable(w http.ResponseWriter) JobsDLQ {
	if s.deps.DLQ == nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the DLQ is not reachable from this server", nil)
	}
	return s.deps.DLQ
}

// dlqSeq reads the {seq} path value; it answers 400 and returns false when
// it is not a sequence number.
func dlqSeq(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		writeError(w, http.StatusBadRequest, codeInvalid, "invalid field(s)", map[string]string{"seq": "must be a sequence number (1 or more)"})
		return 0, false
	}
	return seq, true
}

// listDeadEvents is GET /v1/admin/jobs/dead-letters?after=SEQ&limit=N
// (default 100, at most 1000), oldest first; next_after is the sequence
// to pass as after for the next page (absent on the last page).
func (s *Server) listDeadEvents(w http.ResponseWriter, r *http.Request) {
	dlq := s.dlqOrUnavailable(w)
	if dlq == nil {
		return
	}
	q := r.URL.Query()
	limit, after := 100, uint64(0)
	bad := fieldErrors{}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			bad["limit"] = "must be a whole number from 1 to 1000"
		}
		limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			bad["after"] = "must be a sequence number"
		}
		after = n
	}
	if len(bad) > 0 {
		writeError(w, http.StatusBadRequest, codeInvalid, "invalid field(s)", bad)
		return
	}
	evs, err := dlq.List(r.Context(), after, limit)
	if err != nil {
		s.log.Error("list DLQ events", "err", err)
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "could not read the DLQ", nil)
		return
	}
	out := map[string]any{"dead_letters": evs}
	if evs == nil {
		out["dead_letters"] = []DeadEvent{}
	}
	if len(evs) == limit {
		out["next_after"] = evs[len(evs)-1].Seq
	}
	writeJSON(w, http.StatusOK, out)
}

// getDeadEvent is GET /v1/admin/jobs/dead-letters/{seq}: one event with
// its data.
func (s *Server) getDeadEvent(w http.ResponseWriter, r *http.Request) {
	dlq := s.dlqOrUnavailable(w)
	if dlq == nil {
		return
	}
	seq, ok := dlqSeq(w, r)
	if !ok {
		return
	}
	ev, err := dlq.Get(r.Context(), seq)
	switch {
	case errors.Is(err, ErrDeadEventNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, "no such event in the DLQ", nil)
	case err != nil:
		s.log.Error("read DLQ event", "seq", seq, "err", err)
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "could not read the DLQ", nil)
	default:
		writeJSON(w, http.StatusOK, ev)
	}
}

// replayDeadEvent is POST /v1/admin/jobs/dead-letters/{seq}/replay: the
// event goes back to the events stream on its original subject, and out
// of the DLQ.
func (s *Server) replayDeadEvent(w http.ResponseWriter, r *http.Request) {
	dlq := s.dlqOrUnavailable(w)
	if dlq == nil {
		return
	}
	seq, ok := dlqSeq(w, r)
	if !ok {
		return
	}
	subject, streamSeq, err := dlq.Replay(r.Context(), seq)
	switch {
	case errors.Is(err, ErrDeadEventNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, "no such event in the DLQ", nil)
	case err != nil:
		s.log.Error("replay DLQ event", "seq", seq, "err", err)
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "could not replay the event; retrying publishes it at most once", nil)
	default:
		s.log.Info("DLQ event replayed", "seq", seq, "subject", subject, "stream_seq", streamSeq, "by", "admin")
		writeJSON(w, http.StatusAccepted, map[string]any{"seq": seq, "subject": subject, "stream_seq": streamSeq})
	}
}
