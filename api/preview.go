package api

import (
	"bytes"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/preview"
)

// Previewer answers a filter's live preview; *preview.Recent is the real
// one.
type Previewer interface {
	Preview(f matcher.Filter, now time.Time) (preview.Result, error)
}

// maxPreviewBody bounds a POST /v1/preview body: a filter within the
// budget fits in far less.
const maxPreviewBody = 8 << 10

// previewAllowed reports whether a preview may start now, taking one of the
// server's preview slots and the client's own; done gives them back. The
// slots bound the CPU that anonymous previews can take, and one preview at
// a time per client (an IPv4 address or an IPv6 /64) keeps one client from
// holding every slot: a filter with no indexed clause scans every held job
// (docs/security.md). busy tells which bound refused it.
func (s *Server) previewAllowed(r *http.Request) (done func(), busy previewBusy) {
	client := rateIP(s.clientIP(r))
	s.previewMu.Lock()
	if s.previewing[client] {
		s.previewMu.Unlock()
		return nil, clientBusy
	}
	s.previewing[client] = true
	s.previewMu.Unlock()
	release := func() {
		s.previewMu.Lock()
		delete(s.previewing, client)
		s.previewMu.Unlock()
	}
	select {
	case s.previews <- struct{}{}:
		return func() { <-s.previews; release() }, notBusy
	default:
		release()
		return nil, serverBusy
	}
}

// previewBusy is why previewAllowed refused a preview.
type previewBusy int

const (
	notBusy    previewBusy = iota
	clientBusy             // this client has a preview running
	serverBusy             // every slot is taken
)

// previewJSON is POST /v1/preview with {"filter": {...}}: how many recent
// jobs the filter would have matched in the last 7 and 30 days and the
// five newest (docs/openapi.yaml). The filter is validated as a
// subscription's is, budget included, so one preview's cost is bounded;
// at most a few run at once (503 with Retry-After past that). Like the
// subscription API it reads JSON only, from this site or an allowed origin.
func (s *Server) previewJSON(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, codeMediaType, "the body must be JSON sent with Content-Type: application/json", nil)
		return
	}
	if err := s.signup.Check(r); err != nil {
		writeError(w, http.StatusForbidden, codeForbidden, "cross-site request refused: this web origin may not use the preview", nil)
		return
	}
	s.allowOrigin(w, r)
	if s.deps.Preview == nil {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the preview does not run in this process", nil)
		return
	}
	body, err := readBodyMax(w, r, maxPreviewBody)
	if err != nil {
		bodyErrorMax(w, err, maxPreviewBody)
		return
	}
	bad := fieldErrors{}
	top, ok := object(body, "body", bad)
	if !ok {
		writeError(w, http.StatusBadRequest, codeInvalid, "the body must be a JSON object: "+bad["body"], nil)
		return
	}
	var f matcher.Filter
	for _, k := range sortedKeys(top) {
		if k != "filter" {
			bad.add(k, "unknown field")
		}
	}
	if raw, ok := top["filter"]; ok && string(bytes.TrimSpace(raw)) != "null" {
		decodeFilter(raw, &f, bad)
	} else {
		bad.add("filter", "is required: the filter object of a subscription")
	}
	if len(bad) == 0 {
		s.checkFilterText(&f, bad)
		validateFilter(&f, bad)
	}
	if len(bad) > 0 {
		writeError(w, http.StatusBadRequest, codeInvalid, "invalid field(s)", bad)
		return
	}
	res, ok := s.preview(w, r, f)
	if ok {
		writeJSON(w, http.StatusOK, res)
	}
}

// preview runs a valid filter's preview, or answers 503 when too many run.
func (s *Server) preview(w http.ResponseWriter, r *http.Request, f matcher.Filter) (preview.Result, bool) {
	done, busy := s.previewAllowed(r)
	switch busy {
	case clientBusy:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, codeLimited, "one preview at a time: wait for the previous answer", nil)
		return preview.Result{}, false
	case serverBusy:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "too many previews at once; retry in a second", nil)
		return preview.Result{}, false
	}
	defer done()
	res, err := s.deps.Preview.Preview(f, s.cfg.Clock())
	if err != nil { // validated: cannot happen
		writeError(w, http.StatusBadRequest, codeInvalid, "invalid field(s)", map[string]string{"filter": err.Error()})
		return preview.Result{}, false
	}
	if res.Newest == nil {
		res.Newest = []preview.Item{}
	}
	return res, true
}

// checkFilterText applies checkText's rules to a filter alone.
func (s *Server) checkFilterText(f *matcher.Filter, bad fieldErrors) {
	in := subscriptionInput{Filter: *f}
	checkText(&in, bad)
	for k := range bad {
		if !strings.HasPrefix(k, "filter") {
			delete(bad, k)
		}
	}
}
