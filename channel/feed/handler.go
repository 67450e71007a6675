package feed

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jobalert/jobalert/internal/redact"
)

// Path is the feeds' route prefix: GET Path + "<token>.atom".
const Path = "/v1/feeds/"

// HandlerConfig configures a Handler.
type HandlerConfig struct {
	// PublicURL is the service's public base URL (http or https).
	PublicURL string
	// ManageURL, when not nil, returns a subscription's manage page URL,
	// linked from its feed.
	ManageURL func(sub string) string
	Product   string
	// MaxAge is Cache-Control's max-age; 0 means one minute: a reader
	// that honours it still sees a match within a minute or so.
	MaxAge time.Duration
	Logger *slog.Logger
}

// Handler serves GET and HEAD /v1/feeds/<token>.atom.
type Handler struct {
	store *Store
	cfg   HandlerConfig
	site  *url.URL
	log   *slog.Logger
}

// NewHandler returns the feed handler; a PublicURL that is not an
// absolute http(s) URL is an error.
func NewHandler(s *Store, cfg HandlerConfig) (*Handler, error) {
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, errors.New("feed: PublicURL must be an absolute http(s) URL")
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Minute
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{store: s, cfg: cfg, site: u, log: log.With("component", "feed")}, nil
}

// validToken reports whether tok can be one Rotate made (base64url).
func validToken(tok string) bool {
	if len(tok) < 16 || len(tok) > 128 {
		return false
	}
	return strings.Trim(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

// ServeHTTP answers the feed with ETag and Last-Modified, 304 to a
// matching If-None-Match (or, without one, an If-Modified-Since not
// older than the feed), and 404 for a token it does not know: the answer
// is the same for a revoked token, one never issued, and a malformed one.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("X-Robots-Tag", "noindex")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name, ok := strings.CutPrefix(r.URL.Path, Path)
	tok, atom := strings.CutSuffix(name, ".atom")
	if !ok || !atom || !validToken(tok) {
		http.NotFound(w, r)
		return
	}
	sub, err := h.store.Resolve(r.Context(), tok)
	if errors.Is(err, ErrUnknownToken) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		h.log.Error("resolve feed token", "token", redact.Token(tok), "err", redact.Error(err))
		http.Error(w, "feed unavailable, try again later", http.StatusServiceUnavailable)
		return
	}
	snap, err := h.store.Read(r.Context(), sub)
	if err != nil {
		h.log.Error("read feed", "subscription", sub, "err", redact.Error(err))
		http.Error(w, "feed unavailable, try again later", http.StatusServiceUnavailable)
		return
	}
	meta := Meta{Site: h.site, Self: strings.TrimSuffix(h.cfg.PublicURL, "/") + Path + tok + ".atom", Sub: sub, Product: h.cfg.Product}
	if h.cfg.ManageURL != nil {
		meta.ManageURL = h.cfg.ManageURL(sub)
	}
	body, err := Render(snap, meta)
	if err != nil {
		h.log.Error("render feed", "subscription", sub, "err", err)
		http.Error(w, "feed unavailable, try again later", http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	modified := snap.Updated.UTC().Truncate(time.Second)
	hd := w.Header()
	hd.Set("ETag", etag)
	if !modified.IsZero() {
		hd.Set("Last-Modified", modified.Format(http.TimeFormat))
	}
	hd.Set("Cache-Control", "private, max-age="+strconv.Itoa(int(h.cfg.MaxAge/time.Second)))
	hd.Set("Vary", "Accept-Encoding")
	if notModified(r, etag, modified) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", "application/atom+xml; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body) // the reader went away: nothing to do
	}
}

// notModified applies RFC 9110 §13.2.2: If-None-Match when present
// (weak comparison), else If-Modified-Since.
func notModified(r *http.Request, etag string, modified time.Time) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == "*" || t == etag {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" && !modified.IsZero() {
		if t, err := http.ParseTime(ims); err == nil && !modified.After(t) {
			return true
		}
	}
	return false
}
