// Package api is jobalert's HTTP face: the JSON API under /v1 (subscribe,
// confirm, one-click unsubscribe, webhook secret rotation, admin), the
// server-rendered web pages (subscribe, confirm, unsubscribe, manage) and
// the health, readiness and metrics endpoints.
//
// Tokens in links stand in for a login (package token). Pages carry strict
// security headers; the form POSTs that change a subscription are protected
// against CSRF (see manage.go), except the RFC 8058 one-click unsubscribe,
// which must work without cookies or a prior page.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
	"github.com/jobalert/jobalert/webhook"
)

// MaxBodyBytes is the largest request body the API reads.
const MaxBodyBytes = 16 << 10

// Config tunes the server. Zero fields take the documented defaults.
type Config struct {
	// PublicURL is the service's public base URL (JOBALERT_PUBLIC_URL),
	// e.g. https://alerts.example.com; every link in emails starts with it.
	PublicURL string
	// AdminToken guards /v1/admin/* and the admin subscription routes;
	// empty disables them (every call answers 403).
	AdminToken string
	// ConfirmTTL is how long a confirmation link works; default 7 days.
	ConfirmTTL time.Duration
	// SubscriptionsPerEmail caps the subscriptions of one address; default 20.
	SubscriptionsPerEmail int
	// ConfirmationsPerHour caps the confirmation emails sent to one address
	// in an hour; default 5.
	ConfirmationsPerHour int
	// ConfirmationsPerIPPerHour caps the confirmation emails one client IP
	// (an IPv6 client: its /64) asks for in an hour; default 30.
	ConfirmationsPerIPPerHour int
	// ConfirmationsPerHourTotal caps the sign-up emails all clients
	// together ask for in an hour (JOBALERT_CONFIRMATIONS_PER_HOUR_TOTAL);
	// default 1000.
	ConfirmationsPerHourTotal int
	// AllowedOrigins are the web origins, besides PublicURL's, whose pages
	// may post the sign-up API and form (JOBALERT_ALLOWED_ORIGINS), e.g. a
	// job board embedding the form: "https://board.example".
	AllowedOrigins []string
	// ManageTTL is how long a manage link works (JOBALERT_MANAGE_TTL);
	// default 90 days. Every email carries a fresh one.
	ManageTTL time.Duration
	// ActionTTL is how long an emailed "delete all my data" or webhook
	// secret rotation link works; default 1 hour.
	ActionTTL time.Duration
	// WebhookAllowPrivate accepts http and private webhook targets
	// (JOBALERT_WEBHOOK_ALLOW_PRIVATE).
	WebhookAllowPrivate bool
	// TrustProxy makes the client IP the right-most X-Forwarded-For entry
	// (the one our reverse proxy appended) instead of the peer address.
	TrustProxy bool
	// Product is the name shown on pages; default "jobalert".
	Product string
	// SendTimeout bounds sending the confirmation email; default 20s.
	SendTimeout time.Duration
	// Clock is the time source; default time.Now.
	Clock func() time.Time
}

func (c Config) withDefaults() Config {
	if c.ConfirmTTL <= 0 {
		c.ConfirmTTL = 7 * 24 * time.Hour
	}
	if c.SubscriptionsPerEmail <= 0 {
		c.SubscriptionsPerEmail = 20
	}
	if c.ConfirmationsPerHour <= 0 {
		c.ConfirmationsPerHour = 5
	}
	if c.ConfirmationsPerIPPerHour <= 0 {
		c.ConfirmationsPerIPPerHour = 30
	}
	if c.ConfirmationsPerHourTotal <= 0 {
		c.ConfirmationsPerHourTotal = 1000
	}
	if c.ManageTTL <= 0 {
		c.ManageTTL = 90 * 24 * time.Hour
	}
	if c.ActionTTL <= 0 {
		c.ActionTTL = time.Hour
	}
	if c.Product == "" {
		c.Product = "jobalert"
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 20 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	return c
}

// Store is what the API needs from the data model; *store.Redis is the
// real one.
type Store interface {
	CreateSubscription(ctx context.Context, sub *store.Subscription, now time.Time) error
	GetSubscription(ctx context.Context, id string) (*store.Subscription, error)
	SubscriptionsByEmail(ctx context.Context, email string) ([]*store.Subscription, error)
	UpdateSubscription(ctx context.Context, id string, now time.Time, change func(*store.Subscription) error) (*store.Subscription, error)
	Activate(ctx context.Context, id string, now time.Time) (*store.Subscription, error)
	DeleteSubscription(ctx context.Context, id string) error
	DeleteAllForEmail(ctx context.Context, email string, suppress bool) (int, error)
	IsSuppressed(ctx context.Context, email string) (bool, error)
	AddressKey(email string) string
	Reserve(ctx context.Context, limits []store.Limit) (*store.Limit, time.Duration, error)
	Release(ctx context.Context, limits []store.Limit) error
	UseOnce(ctx context.Context, tok string, ttl time.Duration) (bool, error)
	RevokeLinks(ctx context.Context, id string) (int, error)
	Stats(ctx context.Context) (store.Stats, error)
	SuppressionCounts(ctx context.Context) (suppressed, bounceCounts int64, err error)
	LiftSuppression(ctx context.Context, email string) (bool, error)
	RecordUnsubscribeReason(ctx context.Context, subID, reason string) (bool, error)
	UnsubscribeFeedback(ctx context.Context) (map[string]int64, error)
	RepostLookup(ctx context.Context, id string) (store.RepostInfo, error)
	ChatDeadLetters(ctx context.Context, limit int) ([]store.ChatDeadLetter, error)
	ReplayChatDeadLetter(ctx context.Context, id string, now time.Time) (string, error)
	DisableChannel(ctx context.Context, id, ch, reason string, now time.Time) (bool, error)
}

// Tokens issues and verifies link tokens; *token.Signer is the real one.
type Tokens interface {
	Issuer
	Verify(tok string, scope token.Scope, now time.Time) (string, error)
	VerifyClaims(tok string, scope token.Scope, now time.Time) (token.Claims, error)
}

// Issuer issues link tokens.
type Issuer interface {
	Issue(scope token.Scope, subID string, expires time.Time) string
	IssueVersion(scope token.Scope, subID string, version int, expires time.Time) string
}

// ConfirmRenderer renders the emails the API sends itself: the double
// opt-in and the notices; *notifier.Renderer is the real one.
type ConfirmRenderer interface {
	Confirm(c notifier.ConfirmEmail) (*mail.Msg, error)
	Notice(n notifier.Notice) (*mail.Msg, error)
}

// Mailer sends one email; *notifier.Mailer is the real one.
type Mailer interface {
	Send(ctx context.Context, msg *mail.Msg) error
}

// Webhooks manages webhook endpoints and dead letters; *webhook.Service is
// the real one.
type Webhooks interface {
	SetEndpoint(ctx context.Context, subID, url, secret string) error
	RotateSecret(ctx context.Context, subID string) (string, error)
	DeleteEndpoint(ctx context.Context, subID string) error
	DeadLetters(ctx context.Context, limit int) ([]webhook.DeadLetter, error)
	Replay(ctx context.Context, id string) error
}

// DigestRunner runs every digest due at an instant; *notifier.Digester is
// the real one.
type DigestRunner interface {
	RunDue(ctx context.Context, now time.Time) (notifier.RunResult, error)
}

// EmailCounter counts the emails the API sends by kind and outcome;
// *notifier.Metrics is the real one.
type EmailCounter interface {
	CountEmail(kind string, err error)
}

// Deps are the server's collaborators. Store, Tokens, Renderer and Mailer
// are required; the others may be nil (webhook_url, or the channel, is then refused, the
// admin digest, webhook and DLQ routes answer 503, /readyz is always ready,
// /metrics answers 404 and emails are not counted).
type Deps struct {
	Store    Store
	Tokens   Tokens
	Renderer ConfirmRenderer
	Mailer   Mailer
	Webhooks Webhooks
	Digests  DigestRunner
	DLQ      JobsDLQ
	// Ready reports whether the service can serve: NATS and Redis
	// reachable, index loaded. Each part that is not ready is an *Unready
	// in the error (errors.Join them); /readyz answers with their names
	// only and logs the rest.
	Ready   func(ctx context.Context) error
	Metrics http.Handler
	Emails  EmailCounter
	Logger  *slog.Logger
	// Preview answers POST /v1/preview and the form's Preview button; nil:
	// they answer 503 and the form shows no preview.
	Preview Previewer
	// Feeds gives out the private feeds' tokens and FeedHandler serves
	// GET /v1/feeds/<token>.atom (a *feed.Store and a *feed.Handler); nil:
	// the feed channel is refused and /v1/feeds/ answers 404.
	Feeds       Feeds
	FeedHandler http.Handler
	// Telegram issues the links that bind a chat; nil: the telegram
	// channel is refused.
	Telegram Telegram
}

// Server serves the API and the pages.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	links  *Links
	pages  *pages
	cop    *http.CrossOriginProtection // pages of this site only
	signup *http.CrossOriginProtection // also AllowedOrigins
	// allowedOrigin holds AllowedOrigins, for the CORS answers.
	allowedOrigin map[string]bool
	routes        []route
	admin         [32]byte      // sha256 of the admin token
	previews      chan struct{} // one slot per preview running (previewAllowed)
	previewMu     sync.Mutex
	previewing    map[string]bool // clients with a preview running
}

// route is one registered pattern. Routes are declared once, in
// Server.table, and both the mux and Routes read them.
type route struct {
	method, path string
	h            http.HandlerFunc
}

// New checks cfg and deps, parses the page templates and returns a Server.
// A template that does not parse, a PublicURL that is not an absolute
// http(s) URL or a missing required dependency is an error.
func New(cfg Config, deps Deps) (*Server, error) {
	cfg = cfg.withDefaults()
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api: public URL %q is not an absolute http(s) URL", cfg.PublicURL)
	}
	switch {
	case deps.Store == nil:
		return nil, errors.New("api: a store is required")
	case deps.Tokens == nil:
		return nil, errors.New("api: a token signer is required")
	case deps.Renderer == nil || deps.Mailer == nil:
		return nil, errors.New("api: a confirmation renderer and a mailer are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := parsePages(cfg.Product)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		deps:   deps,
		log:    deps.Logger.With("component", "api"),
		links:  NewLinks(cfg.PublicURL, deps.Tokens, LinkTTLs{Confirm: cfg.ConfirmTTL, Manage: cfg.ManageTTL, Action: cfg.ActionTTL}, cfg.Clock),
		pages:  p,
		cop:    http.NewCrossOriginProtection(),
		signup: http.NewCrossOriginProtection(),
		admin:  sha256.Sum256([]byte(cfg.AdminToken)),
		// Previews are CPU only: a few per core keep the answers
		// fast and the rest of the server responsive.
		previews:   make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		previewing: map[string]bool{},
	}
	for _, c := range []*http.CrossOriginProtection{s.cop, s.signup} {
		if err := c.AddTrustedOrigin(u.Scheme + "://" + u.Host); err != nil {
			return nil, fmt.Errorf("api: public URL: %w", err)
		}
	}
	s.allowedOrigin = map[string]bool{}
	for _, o := range cfg.AllowedOrigins {
		if err := s.signup.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("api: allowed origin %q: %w", o, err)
		}
		s.allowedOrigin[o] = true
	}
	s.routes = s.table()
	return s, nil
}

// Links returns the link builder the server uses; the notifier needs the
// same one for the links in alert emails.
func (s *Server) Links() *Links { return s.links }

// table lists every route. docs/openapi.yaml describes each of them, and a
// test keeps the two in step.
func (s *Server) table() []route {
	return []route{
		{"GET", "/{$}", s.subscribePage},
		{"POST", "/{$}", s.subscribeForm},
		{"GET", "/static/{file}", s.static},
		{"GET", "/embed", s.embedPage},
		{"POST", "/embed", s.embedForm},
		{"GET", "/embed.js", s.embedScript},
		{"GET", "/healthz", s.healthz},
		{"GET", "/readyz", s.readyz},
		{"GET", "/metrics", s.metrics},

		{"POST", "/v1/preview", s.previewJSON},
		{"OPTIONS", "/v1/preview", s.preflight},
		{"POST", "/v1/subscriptions", s.createSubscription},
		{"OPTIONS", "/v1/subscriptions", s.preflight},
		{"GET", "/v1/subscriptions/{id}", s.requireAdmin(s.getSubscription)},
		{"DELETE", "/v1/subscriptions/{id}", s.requireAdmin(s.deleteSubscription)},
		{"POST", "/v1/subscriptions/{id}/webhook/rotate", s.rotateWebhook},
		{"GET", "/v1/feeds/{token}", s.serveFeed},
		{"GET", "/v1/channel", s.channelPage(false)},
		{"GET", "/v1/channel/stop", s.channelPage(true)},
		{"POST", "/v1/channel/stop", s.channelStop},

		{"GET", "/v1/confirm", s.confirmPage},
		{"POST", "/v1/confirm", s.confirm},
		{"GET", "/v1/unsubscribe", s.unsubscribePage},
		{"POST", "/v1/unsubscribe", s.unsubscribe},
		{"POST", "/v1/unsubscribe/feedback", s.unsubscribeFeedback},
		{"GET", "/v1/manage", s.managePage},
		{"POST", "/v1/manage", s.manage},
		{"GET", "/v1/manage/delete-all", s.deleteAllPage},
		{"POST", "/v1/manage/delete-all", s.deleteAll},
		{"GET", "/v1/manage/rotate-webhook", s.rotatePage},
		{"POST", "/v1/manage/rotate-webhook", s.rotate},

		{"POST", "/v1/admin/subscriptions/search", s.requireAdmin(s.searchSubscriptions)},
		{"POST", "/v1/admin/subscriptions/{id}/revoke-links", s.requireAdmin(s.revokeLinks)},
		{"GET", "/v1/admin/stats", s.requireAdmin(s.stats)},
		{"GET", "/v1/admin/suppressions", s.requireAdmin(s.suppressions)},
		{"POST", "/v1/admin/suppressions/lift", s.requireAdmin(s.liftSuppression)},
		{"POST", "/v1/admin/jobs/lookup", s.requireAdmin(s.lookupJob)},
		{"GET", "/v1/admin/jobs/dead-letters", s.requireAdmin(s.listDeadEvents)},
		{"GET", "/v1/admin/jobs/dead-letters/{seq}", s.requireAdmin(s.getDeadEvent)},
		{"POST", "/v1/admin/jobs/dead-letters/{seq}/replay", s.requireAdmin(s.replayDeadEvent)},
		{"POST", "/v1/admin/digests/run", s.requireAdmin(s.runDigests)},
		{"GET", "/v1/admin/webhooks/dead-letters", s.requireAdmin(s.deadLetters)},
		{"POST", "/v1/admin/webhooks/dead-letters/{id}/replay", s.requireAdmin(s.replayDeadLetter)},
		{"GET", "/v1/admin/chat-dead-letters", s.requireAdmin(s.chatDeadLetters)},
		{"POST", "/v1/admin/chat-dead-letters/{id}/replay", s.requireAdmin(s.replayChatDeadLetter)},
	}
}

// Routes returns every registered pattern as "METHOD /path", in the
// OpenAPI spelling of the path ("/{$}" is "/").
func (s *Server) Routes() []string {
	out := make([]string, 0, len(s.routes))
	for _, r := range s.routes {
		out = append(out, r.method+" "+strings.TrimSuffix(r.path, "{$}"))
	}
	return out
}

// Handler returns the HTTP handler: every route, behind panic recovery and
// the security headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{} // path pattern -> its methods
	var paths []string
	for _, r := range s.routes {
		mux.HandleFunc(r.method+" "+r.path, r.h)
		if _, ok := allowed[r.path]; !ok {
			paths = append(paths, r.path)
		}
		allowed[r.path] = append(allowed[r.path], r.method)
	}
	// A known path with another method is 405 with Allow; the mux's own
	// 405 never happens because of the catch-all below.
	byPath := http.NewServeMux()
	for _, p := range paths {
		methods := allowed[p]
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		byPath.HandleFunc(p, s.methodNotAllowed(strings.Join(methods, ", ")))
	}
	// Anything else: a 404 in the caller's language, not the mux's text.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if h, pattern := byPath.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		s.notFound(w, r)
	})
	return s.recoverer(s.headers(mux))
}

// methodNotAllowed answers 405 with the path's methods in Allow.
func (s *Server) methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed here; allowed: "+allow, nil)
	}
}

// headers sets the security headers on every response.
func (s *Server) headers(next http.Handler) http.Handler {
	hsts := strings.HasPrefix(s.cfg.PublicURL, "https://")
	const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors "
	// The embedded form alone may be framed, by this site and the
	// allowed origins (docs/embed.md, docs/security.md).
	embedAncestors := strings.Join(append([]string{"'self'"}, s.cfg.AllowedOrigins...), " ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.URL.Path == "/embed" {
			h.Set("Content-Security-Policy", csp+embedAncestors)
		} else {
			h.Set("Content-Security-Policy", csp+"'none'")
			h.Set("X-Frame-Options", "DENY")
		}
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if hsts {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic in a handler into a logged 500.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "internal", "internal error", nil)
		}()
		next.ServeHTTP(w, r)
	})
}

// requireAdmin guards h with the admin bearer token: 401 without one, 403
// with a wrong one (or when no admin token is configured).
func (s *Server) requireAdmin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="jobalert admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "admin bearer token required", nil)
			return
		}
		got := sha256.Sum256([]byte(tok))
		if s.cfg.AdminToken == "" || subtle.ConstantTimeCompare(got[:], s.admin[:]) != 1 {
			writeError(w, http.StatusForbidden, "forbidden", "wrong admin token", nil)
			return
		}
		h(w, r)
	}
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	a := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(a, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) { healthz(w, r) }

// Unready is one part of the service that is not ready (Deps.Ready).
// Part is a short name ("nats", "redis", "filter_index", "feeds") that /readyz
// shows; Err is the detail, which goes to the log only: it may name
// hosts, users or internal addresses.
type Unready struct {
	Part string
	Err  error
}

func (u *Unready) Error() string { return u.Part + ": " + u.Err.Error() }
func (u *Unready) Unwrap() error { return u.Err }

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) { readyz(s.deps.Ready, s.log)(w, r) }

// unreadyParts returns the sorted, distinct Part names of the *Unready
// errors in err's tree, or ["service"] when it holds none.
func unreadyParts(err error) []string {
	var parts []string
	var walk func(error)
	walk = func(e error) {
		switch x := e.(type) {
		case nil:
		case *Unready:
			parts = append(parts, x.Part)
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				walk(c)
			}
		case interface{ Unwrap() error }:
			walk(x.Unwrap())
		}
	}
	walk(err)
	if len(parts) == 0 {
		return []string{"service"}
	}
	slices.Sort(parts)
	return slices.Compact(parts)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.deps.Metrics == nil {
		writeError(w, http.StatusNotFound, "not_found", "metrics are not enabled", nil)
		return
	}
	s.deps.Metrics.ServeHTTP(w, r)
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if wantsHTML(r) {
		s.renderMessage(w, http.StatusNotFound, "Page not found", "There is nothing at this address.")
		return
	}
	writeError(w, http.StatusNotFound, "not_found", "no such route", nil)
}
