package api

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
	"github.com/jobalert/jobalert/webhook"
)

// errSignedOut is a manage-like link issued before "sign out of all links".
var errSignedOut = errors.New("the link was signed out")

// verify checks a link token. On failure it answers (a page for browsers,
// 400 JSON otherwise) and returns false.
func (s *Server) verify(w http.ResponseWriter, r *http.Request, tok string, scope token.Scope) (string, bool) {
	id, err := s.deps.Tokens.Verify(tok, scope, s.cfg.Clock())
	if err != nil {
		s.tokenError(w, r, tok, scope, err)
		return "", false
	}
	return id, true
}

// verifyVersioned checks a manage, delete-all or rotate-webhook token: its
// signature and expiry, then that it carries the subscription's current
// token version. It returns the subscription; on failure it has answered.
// Manage links without an expiry (issued before links expired) are refused
// as expired: every email carries a fresh one.
func (s *Server) verifyVersioned(w http.ResponseWriter, r *http.Request, tok string, scope token.Scope) (*store.Subscription, bool) {
	c, err := s.deps.Tokens.VerifyClaims(tok, scope, s.cfg.Clock())
	if err == nil && c.Expires.IsZero() {
		err = token.ErrExpired
	}
	if err != nil {
		s.tokenError(w, r, tok, scope, err)
		return nil, false
	}
	sub, err := s.deps.Store.GetSubscription(r.Context(), c.Subject)
	if err != nil {
		s.storeError(w, r, "get subscription", err)
		return nil, false
	}
	if c.Version != sub.TokenVersion {
		s.tokenError(w, r, tok, scope, errSignedOut)
		return nil, false
	}
	return sub, true
}

// tokenError answers a token that did not verify.
func (s *Server) tokenError(w http.ResponseWriter, r *http.Request, tok string, scope token.Scope, err error) {
	msg := err.Error()
	if tok == "" {
		msg = "the link has no token; open it again from the email"
	}
	if !wantsHTML(r) {
		writeError(w, http.StatusBadRequest, codeInvalidToken, msg, nil)
		return
	}
	lines := []string{upperFirst(msg) + "."}
	switch {
	case errors.Is(err, token.ErrExpired) && scope == token.Confirm:
		lines = append(lines, "Confirmation links work for a limited time. Subscribe again to get a fresh one.")
	case (errors.Is(err, token.ErrExpired) || errors.Is(err, errSignedOut)) && scope == token.Manage:
		lines = append(lines, "Every alert email carries a fresh manage link: use the one in your latest email.")
	case errors.Is(err, token.ErrExpired) || errors.Is(err, errSignedOut):
		lines = append(lines, "Open the manage page from your latest email and ask for a new link.")
	case errors.Is(err, token.ErrWrongScope) && strings.HasPrefix(string(scope), string(token.StopChannel(""))):
		lines = append(lines, "Use the link at the bottom of an alert in the chat.")
	case errors.Is(err, token.ErrWrongScope):
		lines = append(lines, "Use the link from the email for this action.")
	default:
		lines = append(lines, "Copy the whole link from the email into the address bar, or subscribe again.")
	}
	s.renderMessage(w, http.StatusBadRequest, "This link does not work", lines...)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// gone answers for a subscription that no longer exists.
func (s *Server) gone(w http.ResponseWriter, r *http.Request) {
	if !wantsHTML(r) {
		writeError(w, http.StatusNotFound, codeNotFound, "the subscription no longer exists", nil)
		return
	}
	s.renderMessage(w, http.StatusNotFound, "This alert no longer exists",
		"It was deleted, so there is nothing left to change and nothing will be sent.")
}

// storeError answers a failed store call.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, op string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		s.gone(w, r)
		return
	}
	s.log.Error("store call failed", "op", op, "err", err)
	if !wantsHTML(r) {
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the service is temporarily unavailable; try again in a minute", nil)
		return
	}
	s.renderMessage(w, http.StatusServiceUnavailable, "Please try again",
		"The service is temporarily unavailable. Nothing was changed; try again in a minute.")
}

// confirmPage is GET /v1/confirm?token=T: one button that POSTs the token.
// Nothing changes on GET, as mail scanners open links.
func (s *Server) confirmPage(w http.ResponseWriter, r *http.Request) {
	tok, sub, ok := s.tokenSubscription(w, r, token.Confirm)
	if !ok {
		return
	}
	v := s.newView("Confirm your job alert")
	v.Token, v.Summary, v.Email, v.Status = tok, matcher.Summary(sub.Filter), sub.Email, sub.Status
	s.render(w, http.StatusOK, "confirm", v)
}

// confirm is POST /v1/confirm with a form field or JSON "token": the
// double opt-in. The subscription becomes active (and live in every
// replica's index through the change feed).
func (s *Server) confirm(w http.ResponseWriter, r *http.Request) {
	if !wantsJSON(r) {
		if err := s.cop.Check(r); err != nil {
			s.renderMessage(w, http.StatusForbidden, "Form refused", "This form was sent from another site. Open the link from the email again.")
			return
		}
	}
	tok, err := tokenFromBody(w, r)
	if err != nil {
		bodyError(w, err)
		return
	}
	id, ok := s.verify(w, r, tok, token.Confirm)
	if !ok {
		return
	}
	ctx := r.Context()
	sub, err := s.deps.Store.GetSubscription(ctx, id)
	if err != nil {
		s.storeError(w, r, "get subscription", err)
		return
	}
	switch sub.Status {
	case store.StatusPending:
		if sup, err := s.deps.Store.IsSuppressed(ctx, sub.Email); err != nil {
			s.storeError(w, r, "is suppressed", err)
			return
		} else if sup {
			s.refuse(w, r, "This address cannot be subscribed", "It asked not to get email from us.")
			return
		}
		if err := s.registerWebhook(r, sub); err != nil {
			if errors.Is(err, webhook.ErrInvalidURL) {
				s.refuse(w, r, "The webhook URL is not accepted", strings.TrimPrefix(err.Error(), webhook.ErrInvalidURL.Error()+": ")+". Subscribe again with another URL.")
				return
			}
			s.storeError(w, r, "register webhook", err)
			return
		}
		if sub, err = s.deps.Store.UpdateSubscription(ctx, id, s.cfg.Clock(), func(sub *store.Subscription) error {
			if sub.Status == store.StatusPending { // not if it was unsubscribed meanwhile
				sub.Status = store.StatusActive
			}
			sub.PendingWebhookSecret = ""
			return nil
		}); err != nil {
			s.storeError(w, r, "activate", err)
			return
		}
		if s.deps.Feeds != nil && sub.Has(store.ChannelFeed) {
			if err := s.deps.Feeds.Expire(ctx, id, 0); err != nil {
				s.storeError(w, r, "keep feed", err)
				return
			}
		}
		s.log.Info("subscription confirmed", "subscription", id)
	case store.StatusActive, store.StatusPaused:
		// Confirmed before: a second click is fine.
	default:
		s.refuse(w, r, "This alert was stopped",
			"It was unsubscribed, so this confirmation link no longer applies. Subscribe again to start a new alert.")
		return
	}
	if !wantsHTML(r) {
		writeJSON(w, http.StatusOK, map[string]string{"id": sub.ID, "status": sub.Status})
		return
	}
	v := s.newView("You're subscribed")
	v.Summary, v.Email = matcher.Summary(sub.Filter), sub.Email
	v.Message = []string{"Your alert is confirmed. " + scheduleText(sub)}
	v.Link, v.LinkText = s.links.Manage(sub.ID, sub.TokenVersion), "Manage this alert"
	s.render(w, http.StatusOK, "message", v)
}

// registerWebhook registers the webhook endpoint of a subscription being
// confirmed, with the secret given out when it was created. Until then
// the secret lives in the pending subscription only, so an unconfirmed
// subscription leaves nothing behind when it expires.
func (s *Server) registerWebhook(r *http.Request, sub *store.Subscription) error {
	if sub.WebhookURL == "" || sub.PendingWebhookSecret == "" {
		return nil
	}
	if s.deps.Webhooks == nil {
		return errors.New("webhooks are not enabled on this server")
	}
	return s.deps.Webhooks.SetEndpoint(r.Context(), sub.ID, sub.WebhookURL, sub.PendingWebhookSecret)
}

// refuse answers 409 for an action the subscription's state does not allow.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, title, line string) {
	if !wantsHTML(r) {
		writeError(w, http.StatusConflict, codeConflict, title+": "+line, nil)
		return
	}
	s.renderMessage(w, http.StatusConflict, title, line)
}

// tokenFromBody reads "token" from a JSON body or a form.
func tokenFromBody(w http.ResponseWriter, r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
		var b struct {
			Token string `json:"token"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				return "", err
			}
			return "", nil // an unreadable body is a missing token
		}
		return b.Token, nil
	}
	if err := r.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return "", err
		}
	}
	return r.FormValue("token"), nil
}

// unsubscribePage is GET /v1/unsubscribe?token=T: a page with a button.
func (s *Server) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	tok, sub, ok := s.tokenSubscription(w, r, token.Unsubscribe)
	if !ok {
		return
	}
	v := s.newView("Unsubscribe")
	v.Token, v.Summary, v.Email, v.Status = tok, matcher.Summary(sub.Filter), sub.Email, sub.Status
	s.render(w, http.StatusOK, "unsubscribe", v)
}

// queryOrBodyToken returns a POST's token: ?token=, else the body's; on
// failure it has answered.
func queryOrBodyToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	if tok := r.URL.Query().Get("token"); tok != "" {
		return tok, true
	}
	tok, err := tokenFromBody(w, r)
	if err != nil {
		bodyError(w, err)
		return "", false
	}
	return tok, true
}

// unsubscribe is POST /v1/unsubscribe?token=T, the RFC 8058 one-click
// unsubscribe (body List-Unsubscribe=One-Click) and the page's button. It
// needs no cookie and no CSRF token: the signed token is the authority,
// and mail providers POST it from their own servers.
func (s *Server) unsubscribe(w http.ResponseWriter, r *http.Request) {
	tok, ok := queryOrBodyToken(w, r)
	if !ok {
		return
	}
	id, ok := s.verify(w, r, tok, token.Unsubscribe)
	if !ok {
		return
	}
	now := s.cfg.Clock()
	sub, err := s.deps.Store.UpdateSubscription(r.Context(), id, now, func(sub *store.Subscription) error {
		if sub.Status != store.StatusSuppressed {
			if sub.Status != store.StatusUnsubscribed {
				sub.UnsubscribedAt = now.UTC()
			}
			sub.Status = store.StatusUnsubscribed
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Deleted already: nothing will be sent, which is what was asked.
		sub = &store.Subscription{ID: id, Status: store.StatusUnsubscribed}
	case err != nil:
		s.storeError(w, r, "unsubscribe", err)
		return
	default:
		s.log.Info("unsubscribed", "subscription", id)
	}
	if !wantsHTML(r) {
		writeJSON(w, http.StatusOK, map[string]string{"id": sub.ID, "status": store.StatusUnsubscribed})
		return
	}
	v := s.newView("You're unsubscribed")
	if sub.Email != "" {
		v.Summary = matcher.Summary(sub.Filter)
		// No manage link here: the unsubscribe link never expires and
		// outlives "sign out of all links", so it must not hand out one.
		if sub.Status != store.StatusSuppressed {
			v.Token = tok // the optional question posts the same link back
		}
	}
	s.render(w, http.StatusOK, "unsubscribed", v)
}

// unsubscribeFeedback is POST /v1/unsubscribe/feedback, the question the
// page shows after an unsubscribe: a reason (too_many, not_relevant,
// found_job, other), counted once per subscription for `jobalert admin
// stats`, and "weekly instead" (weekly=1), which starts the alert again as
// a weekly one. It is authorised by the same signed unsubscribe token as
// the unsubscribe, and refused from another site's page.
func (s *Server) unsubscribeFeedback(w http.ResponseWriter, r *http.Request) {
	if err := s.cop.Check(r); err != nil {
		s.renderMessage(w, http.StatusForbidden, "Form refused", "This form was sent from another site. Open the unsubscribe link from an email again.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		s.renderMessage(w, http.StatusBadRequest, "Form not readable", "The form could not be read. Open the unsubscribe link again and retry.")
		return
	}
	id, ok := s.verify(w, r, r.PostFormValue("token"), token.Unsubscribe)
	if !ok {
		return
	}
	reason, weekly := r.PostFormValue("reason"), r.PostFormValue("weekly") != ""
	if weekly && reason == "" {
		reason = "too_many"
	}
	if reason != "" && !contains(store.UnsubscribeReasons, reason) {
		s.renderMessage(w, http.StatusBadRequest, "Answer not understood",
			"Pick one of the answers on the page, or just close it: you are unsubscribed either way.")
		return
	}
	ctx := r.Context()
	// With weekly, the reason counts only once the switch is made.
	if reason != "" && !weekly {
		if _, err := s.deps.Store.RecordUnsubscribeReason(ctx, id, reason); err != nil {
			s.storeError(w, r, "unsubscribe reason", err)
			return
		}
	}
	if !weekly {
		s.renderMessage(w, http.StatusOK, "Thank you", "Your answer helps us send better alerts. You are unsubscribed.")
		return
	}
	now := s.cfg.Clock()
	sub, err := s.deps.Store.UpdateSubscription(ctx, id, now, func(sub *store.Subscription) error {
		// The unsubscribe link never expires and anyone holding an old
		// email has it: it may start the alert again only just after it
		// unsubscribed it, not days later against its owner's wish.
		if sub.Status != store.StatusUnsubscribed || now.Sub(sub.UnsubscribedAt) > weeklySwitchWindow {
			return errNotResumable
		}
		sub.Status, sub.Frequency = store.StatusActive, schedule.Weekly
		if sub.WeeklyDay == "" {
			sub.WeeklyDay = defaultWeekly
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errNotResumable):
		s.renderMessage(w, http.StatusConflict, "This alert cannot be started again from here",
			`The switch to weekly is offered only just after an unsubscribe. Use "Manage this alert" in your latest email, or subscribe again.`)
		return
	case err != nil:
		s.storeError(w, r, "switch to weekly", err)
		return
	}
	for _, what := range []string{reason, store.SwitchedWeekly} {
		if _, err := s.deps.Store.RecordUnsubscribeReason(ctx, id, what); err != nil {
			s.log.Warn("count a switch to weekly", "subscription", id, "err", err)
		}
	}
	s.log.Info("unsubscribed, then switched to weekly", "subscription", id)
	v := s.newView("You'll get one email a week")
	v.Summary = matcher.Summary(sub.Filter)
	v.Message = []string{"Your alert is on again, as one weekly email. " + scheduleText(sub),
		`To change it, use "Manage this alert" in that email.`}
	s.render(w, http.StatusOK, "message", v)
}

// weeklySwitchWindow is how long after an unsubscribe its page may
// switch the alert to weekly instead.
const weeklySwitchWindow = time.Hour

// errNotResumable: the subscription may not be started again from an
// unsubscribe link (suppressed, or never confirmed).
var errNotResumable = errors.New("subscription cannot be resumed")

// tokenSubscription verifies the ?token= of a page for scope and reads the
// subscription it names; on failure it has answered and ok is false.
func (s *Server) tokenSubscription(w http.ResponseWriter, r *http.Request, scope token.Scope) (string, *store.Subscription, bool) {
	tok := r.URL.Query().Get("token")
	id, ok := s.verify(w, r, tok, scope)
	if !ok {
		return "", nil, false
	}
	sub, ok := s.subscriptionOf(w, r, id)
	return tok, sub, ok
}

// subscriptionOf reads the subscription a verified token names; on
// failure (404 when it is gone) it has answered and ok is false.
func (s *Server) subscriptionOf(w http.ResponseWriter, r *http.Request, id string) (*store.Subscription, bool) {
	sub, err := s.deps.Store.GetSubscription(r.Context(), id)
	if err != nil {
		s.storeError(w, r, "get subscription", err)
		return nil, false
	}
	return sub, true
}
