package api

import (
	"net/http"

	"github.com/jobalert/jobalert/templates"
)

// embedScript is GET /embed.js: the one script tag a board puts on its page
// (docs/embed.md). It inserts an iframe of /embed, passing on the query
// string of its own src (and data-search) so that the form is filled in
// from the board's search, and sizes the frame from the height messages of
// the frame, accepted only from jobalert's origin and that frame. Anyone
// may load it; only JOBALERT_ALLOWED_ORIGINS may frame the form.
func (s *Server) embedScript(w http.ResponseWriter, r *http.Request) {
	b, err := templates.FS.ReadFile("web/embed.js")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=3600")
	// A script loaded by other sites' pages: it must be readable across
	// origins (it reads nothing of theirs but its own src).
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	_, _ = w.Write(b)
}
