package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/jobalert/jobalert/internal/redact"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/webhook"
)

// createError is why a subscription was not created: an HTTP status, an
// error code, a message and, for validation, the bad fields.
type createError struct {
	status     int
	code       string
	msg        string
	fields     fieldErrors
	retryAfter time.Duration
}

func (e *createError) write(w http.ResponseWriter) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(e.retryAfter))
	}
	writeError(w, e.status, e.code, e.msg, e.fields)
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

func invalid(fields fieldErrors) *createError {
	return &createError{status: http.StatusBadRequest, code: codeInvalid, fields: fields,
		msg: fmt.Sprintf("the subscription has %d invalid field(s); see fields", len(fields))}
}

// created is the 201 answer of POST /v1/subscriptions. It is the same for
// a new address, a known one, one at its cap and a suppressed one, so the
// answer tells a stranger nothing about an address (docs/security.md).
type created struct {
	ID            string   `json:"id"`
	Status        string   `json:"status"`
	WebhookSecret string   `json:"webhook_secret,omitempty"`
	Channels      []string `json:"channels"`
	// FeedURL is the private feed's address (the feed channel), and
	// TelegramLink the link that binds a chat (the telegram channel).
	FeedURL      string `json:"feed_url,omitempty"`
	TelegramLink string `json:"telegram_link,omitempty"`
	// DisabledChannels is always empty for a new subscription; it is in
	// the answer for the shape GET /v1/subscriptions/{id} shares.
	DisabledChannels map[string]string    `json:"disabled_channels,omitempty"`
	QuietHours       *schedule.QuietHours `json:"quiet_hours,omitempty"`
	MaxAlertsPerDay  int                  `json:"max_alerts_per_day,omitempty"`
}

// createSubscription is POST /v1/subscriptions. Only a JSON body is read
// (a cross-site HTML form can send text/plain, never application/json
// without a CORS preflight), and a browser request must come from this
// site or an allowed origin.
func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, codeMediaType,
			"the body must be JSON sent with Content-Type: application/json", nil)
		return
	}
	if err := s.signup.Check(r); err != nil {
		writeError(w, http.StatusForbidden, codeForbidden,
			"cross-site request refused: this web origin may not sign up through the API", nil)
		return
	}
	s.allowOrigin(w, r)
	body, err := readBody(w, r)
	if err != nil {
		bodyError(w, err)
		return
	}
	in, bad := decodeSubscription(body)
	if _, ok := bad["body"]; ok {
		writeError(w, http.StatusBadRequest, codeInvalid, "the body must be a JSON object: "+bad["body"], nil)
		return
	}
	out, cerr := s.create(r, in, bad)
	if cerr != nil {
		cerr.write(w)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// preflight is OPTIONS /v1/subscriptions: the CORS preflight of a page on
// an allowed origin that posts JSON. Other origins get no CORS headers, so
// the browser does not send the POST.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	if s.allowOrigin(w, r) {
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
}

// allowOrigin sets the CORS answer for a request from an allowed origin
// and reports whether it did.
func (s *Server) allowOrigin(w http.ResponseWriter, r *http.Request) bool {
	w.Header().Add("Vary", "Origin")
	o := r.Header.Get("Origin")
	if o == "" || !s.allowedOrigin[o] {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", o)
	return true
}

// readBody reads at most MaxBodyBytes of the request body.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return readBodyMax(w, r, MaxBodyBytes)
}

// readBodyMax reads at most max bytes of the request body.
func readBodyMax(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, max))
}

func bodyError(w http.ResponseWriter, err error) { bodyErrorMax(w, err, MaxBodyBytes) }

// bodyErrorMax answers a body that could not be read, or was over max.
func bodyErrorMax(w http.ResponseWriter, err error, max int64) {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooLarge,
			fmt.Sprintf("the body is larger than %d bytes", max), nil)
		return
	}
	writeError(w, http.StatusBadRequest, codeInvalid, "could not read the body", nil)
}

// rateIP is the client a per-IP limit counts against: an IPv4 address, or
// the /64 of an IPv6 one (one customer's allocation).
func rateIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// signupLimits are the counters one sign-up email uses.
func (s *Server) signupLimits(r *http.Request, addr string) []store.Limit {
	return []store.Limit{
		{Kind: store.RateAddress, Value: s.deps.Store.AddressKey(addr), Max: s.cfg.ConfirmationsPerHour, Window: time.Hour},
		{Kind: store.RateIP, Value: rateIP(s.clientIP(r)), Max: s.cfg.ConfirmationsPerIPPerHour, Window: time.Hour},
		{Kind: store.RateTotal, Value: "all", Max: s.cfg.ConfirmationsPerHourTotal, Window: time.Hour},
	}
}

var limitText = map[string]string{
	store.RateAddress: "too many emails were sent to this address in the last hour; try again later",
	store.RateIP:      "too many sign-ups from your network in the last hour; try again later",
	store.RateTotal:   "the service has sent as many sign-up emails as it may this hour; try again later",
}

// create validates in and, within the limits, answers as for a new
// pending subscription whatever the address's state:
//
//   - new or known address under its cap: a pending subscription is stored
//     (it expires after ConfirmTTL unless confirmed) and the confirmation
//     email sent;
//   - an address at its cap: nothing is stored, and the address gets a
//     notice with a link to manage its alerts;
//   - a suppressed address: nothing is stored and nothing sent.
//
// Every limit is checked before any counter moves, so a refused request
// writes nothing. If the email cannot be sent, the subscription is deleted
// again, the counters given back and the answer is 503, so the person can
// simply retry.
func (s *Server) create(r *http.Request, in subscriptionInput, bad fieldErrors) (*created, *createError) {
	s.validate(&in, bad, nil)
	if len(bad) > 0 {
		return nil, invalid(bad)
	}
	// The steps below must not stop half-way because the client left.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.SendTimeout+10*time.Second)
	defer cancel()
	log := s.log.With("email", redact.Address(in.Email))

	out := &created{ID: store.NewID(), Status: store.StatusPending, Channels: in.Channels,
		QuietHours: in.QuietHours, MaxAlertsPerDay: in.MaxAlertsPerDay}
	if in.WebhookURL != "" {
		secret, err := webhook.NewSecret()
		if err != nil {
			return nil, s.unavailable(log, "webhook secret", err)
		}
		out.WebhookSecret = secret
	}

	limits := s.signupLimits(r, in.Email)
	full, wait, err := s.deps.Store.Reserve(ctx, limits)
	if err != nil {
		return nil, s.unavailable(log, "rate limit", err)
	}
	if full != nil {
		// Debug only: a flood of refusals must not flood the log either.
		log.Debug("subscription refused: rate limit", "limit", full.Kind)
		return nil, &createError{status: http.StatusTooManyRequests, code: codeLimited, msg: limitText[full.Kind], retryAfter: wait}
	}
	// The reservation stands for an email sent, or for the answer given in
	// place of one (a suppressed address), so that a count of refusals
	// cannot tell a suppressed address apart either.
	kept := false
	defer func() {
		if !kept {
			if err := s.deps.Store.Release(ctx, limits); err != nil {
				log.Warn("rate limit not given back", "err", err)
			}
		}
	}()

	// The feed URL and the Telegram link are made for every answer, also
	// when nothing is stored (a suppressed address, one at its cap), so
	// that neither the answer nor the feed URL tells those apart.
	links, err := s.linksFor(ctx, out.ID, in.Channels, nil)
	if err != nil {
		return nil, s.unavailable(log, "channel links", err)
	}
	out.FeedURL, out.TelegramLink = links.FeedURL, links.TelegramLink

	suppressed, err := s.deps.Store.IsSuppressed(ctx, in.Email)
	if err != nil {
		return nil, s.unavailable(log, "check suppression", err)
	}
	if suppressed {
		kept = true
		log.Debug("sign-up for a suppressed address answered; nothing stored or sent")
		return out, nil
	}
	subs, err := s.deps.Store.SubscriptionsByEmail(ctx, in.Email)
	if err != nil {
		return nil, s.unavailable(log, "count subscriptions", err)
	}
	if confirmed := confirmedOnly(subs); len(confirmed) >= s.cfg.SubscriptionsPerEmail {
		if cerr := s.sendCapNotice(ctx, log, in.Email, confirmed); cerr != nil {
			return nil, cerr
		}
		kept = true
		log.Info("sign-up for an address at its cap; notice sent")
		return out, nil
	}

	sub := &store.Subscription{
		ID: out.ID, Email: in.Email, Filter: in.Filter, Frequency: in.Frequency, Timezone: in.Timezone,
		SendHour: in.SendHour, WeeklyDay: in.WeeklyDay, WebhookURL: in.WebhookURL, Status: store.StatusPending,
		PendingWebhookSecret: out.WebhookSecret,
	}
	applyChannels(sub, in)
	if err := s.deps.Store.CreateSubscription(ctx, sub, s.cfg.Clock()); err != nil {
		return nil, s.unavailable(log, "create subscription", err)
	}
	log = log.With("subscription", sub.ID)
	msg, err := s.deps.Renderer.Confirm(notifier.ConfirmEmail{
		To: sub.Email, ConfirmURL: s.links.Confirm(sub.ID), Summary: matcher.Summary(sub.Filter),
		Keywords: sub.Filter.Keywords, WebhookHost: urlHost(sub.WebhookURL),
	})
	if err == nil {
		err = s.send(ctx, notifier.KindConfirmation, msg)
	}
	if err != nil {
		if err := s.deps.Store.DeleteSubscription(ctx, sub.ID); err != nil {
			log.Error("could not delete a pending subscription after a failure", "err", err)
		}
		if err := s.deleteFeed(ctx, sub.ID); err != nil {
			log.Error("could not delete the feed of a pending subscription after a failure", "err", err)
		}
		log.Error("confirmation email not sent; pending subscription deleted", "err", err)
		return nil, emailUnavailable()
	}
	kept = true
	log.Info("subscription created; confirmation sent", "frequency", sub.Frequency, "channels", strings.Join(sub.Channels, ","))
	return out, nil
}

// confirmedOnly drops pending subscriptions: they do not count toward the
// per-address cap.
func confirmedOnly(subs []*store.Subscription) []*store.Subscription {
	var out []*store.Subscription
	for _, sub := range subs {
		if sub.Status != store.StatusPending {
			out = append(out, sub)
		}
	}
	return out
}

// sendCapNotice tells an address at its cap, by email only, that nothing
// was added, with a link to manage its newest alert.
func (s *Server) sendCapNotice(ctx context.Context, log *slog.Logger, to string, subs []*store.Subscription) *createError {
	newest := subs[0]
	for _, sub := range subs[1:] {
		if sub.CreatedAt.After(newest.CreatedAt) {
			newest = sub
		}
	}
	msg, err := s.deps.Renderer.Notice(notifier.Notice{
		To: to, Subject: "You already have " + strconv.Itoa(len(subs)) + " job alerts",
		Title: "Nothing was added: you already have " + strconv.Itoa(len(subs)) + " job alerts",
		Lines: []string{
			fmt.Sprintf("Someone, hopefully you, asked %s for a new job alert for this address, but it already has %d alerts, the most one address may have.", s.cfg.Product, len(subs)),
			"To add a new one, delete an alert you no longer need from its manage page, then sign up again.",
		},
		ActionURL: s.links.Manage(newest.ID, newest.TokenVersion), ActionText: "Manage your alerts",
	})
	if err == nil {
		err = s.send(ctx, notifier.KindNotice, msg)
	}
	if err != nil {
		log.Error("cap notice not sent", "err", err)
		return emailUnavailable()
	}
	return nil
}

// send sends one email the API itself writes, of kind (notifier.KindConfirmation
// or KindNotice), within SendTimeout, and counts it.
func (s *Server) send(ctx context.Context, kind string, msg *mail.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SendTimeout)
	defer cancel()
	err := s.deps.Mailer.Send(ctx, msg)
	if s.deps.Emails != nil {
		s.deps.Emails.CountEmail(kind, err)
	}
	return err
}

func emailUnavailable() *createError {
	return &createError{status: http.StatusServiceUnavailable, code: codeUnavailable, retryAfter: time.Minute,
		msg: "the email could not be sent; nothing was saved, please try again in a minute"}
}

// urlHost returns the host of a URL, the only part of a webhook URL that
// pages, emails and logs show (its path and query may hold a token).
func urlHost(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Hostname()
}

func (s *Server) unavailable(log *slog.Logger, op string, err error) *createError {
	log.Error("subscription not created", "op", op, "err", err)
	return &createError{status: http.StatusServiceUnavailable, code: codeUnavailable, retryAfter: time.Minute,
		msg: "the service is temporarily unavailable; nothing was saved, please try again in a minute"}
}
