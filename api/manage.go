package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
	"github.com/jobalert/jobalert/webhook"
)

// CSRF protection of the manage page's forms.
//
// The manage page is reached with a manage token in its URL and keeps no
// session or cookie. Its forms POST the manage token together with a CSRF
// token derived from it: a token of scope "csrf" (signed with the same
// JOBALERT_SECRET HMAC as every link token) whose subject is a hash of the
// manage token, valid for csrfTTL. A POST must carry both and they must
// belong together, so a form on another site cannot act even if it learnt
// a subscription id; on top, http.CrossOriginProtection refuses cross-site
// browser POSTs (Sec-Fetch-Site / Origin). Nothing is stored server-side.
// The one-click unsubscribe is deliberately exempt (RFC 8058).
const (
	csrfScope token.Scope = "csrf"
	csrfTTL               = 12 * time.Hour
)

func csrfSubject(manageToken string) string {
	h := sha256.Sum256([]byte("jobalert-csrf\x00" + manageToken))
	return hex.EncodeToString(h[:16])
}

func (s *Server) csrfToken(manageToken string) string {
	return s.deps.Tokens.Issue(csrfScope, csrfSubject(manageToken), s.cfg.Clock().Add(csrfTTL))
}

func (s *Server) checkCSRF(manageToken, csrf string) bool {
	subject, err := s.deps.Tokens.Verify(csrf, csrfScope, s.cfg.Clock())
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(subject), []byte(csrfSubject(manageToken))) == 1
}

var statusText = map[string]string{
	store.StatusPending:      "Waiting for you to confirm your address (see the email we sent).",
	store.StatusActive:       "Active.",
	store.StatusPaused:       "Paused: nothing is sent until you resume it.",
	store.StatusUnsubscribed: "Unsubscribed: nothing is sent. You can resume it.",
	store.StatusSuppressed:   "Stopped: emails to this address bounced.",
}

var doneText = map[string]string{
	"saved":   "Your changes are saved.",
	"paused":  "The alert is paused.",
	"resumed": "The alert is active again.",
}

// scheduleText says when emails go out.
func scheduleText(sub *store.Subscription) string {
	zone := sub.Timezone
	if zone == "" {
		zone = "UTC"
	}
	switch sub.Frequency {
	case schedule.Instant:
		return "You will get an email shortly after new matching jobs appear."
	case schedule.Weekly:
		return fmt.Sprintf("You will get an email every %s at %02d:00 (%s) when there are new matching jobs.",
			upperFirst(sub.WeeklyDay), sub.SendHour, zone)
	default:
		return fmt.Sprintf("You will get an email every day at %02d:00 (%s) when there are new matching jobs.", sub.SendHour, zone)
	}
}

// managePage is GET /v1/manage?token=T.
func (s *Server) managePage(w http.ResponseWriter, r *http.Request) {
	tok, sub, ok := s.tokenSubscription(w, r, token.Manage)
	if !ok {
		return
	}
	v, err := s.manageView(r, tok, sub)
	if err != nil {
		s.storeError(w, r, "subscriptions by email", err)
		return
	}
	v.Form = formFromSubscription(sub)
	v.Notice = doneText[r.URL.Query().Get("done")]
	s.render(w, http.StatusOK, "manage", v)
}

func (s *Server) manageView(r *http.Request, tok string, sub *store.Subscription) (*view, error) {
	all, err := s.deps.Store.SubscriptionsByEmail(r.Context(), sub.Email)
	if err != nil {
		return nil, err
	}
	v := s.newView("Manage your job alert")
	v.Token, v.CSRF = tok, s.csrfToken(tok)
	v.Email, v.Status, v.StatusText = sub.Email, sub.Status, statusText[sub.Status]
	v.Summary = notifier.Summary(sub.Filter)
	v.Others = len(all) - 1
	if sub.Status == store.StatusActive {
		v.Message = []string{scheduleText(sub)}
	}
	return v, nil
}

// manage is POST /v1/manage: the manage page's forms, told apart by
// "action": save, pause, resume, delete, delete_all.
func (s *Server) manage(w http.ResponseWriter, r *http.Request) {
	if err := s.cop.Check(r); err != nil {
		s.renderMessage(w, http.StatusForbidden, "Form refused", "This form was sent from another site. Open the manage link from an email again.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		s.renderMessage(w, http.StatusBadRequest, "Form not readable", "The form could not be read. Open the manage page again and retry.")
		return
	}
	tok := r.PostFormValue("token")
	id, ok := s.verify(w, r, tok, token.Manage)
	if !ok {
		return
	}
	if !s.checkCSRF(tok, r.PostFormValue("csrf")) {
		v := s.newView("This form has expired")
		v.Message = []string{"For your safety the manage page's forms work for a limited time. Open the page again and retry."}
		v.Link, v.LinkText = s.links.Manage(id), "Open the manage page"
		s.render(w, http.StatusForbidden, "message", v)
		return
	}
	ctx := r.Context()
	sub, err := s.deps.Store.GetSubscription(ctx, id)
	if err != nil {
		s.storeError(w, r, "get subscription", err)
		return
	}
	log := s.log.With("subscription", id)
	switch action := r.PostFormValue("action"); action {
	case "save":
		s.manageSave(w, r, tok, sub)
	case "pause", "resume":
		if action == "resume" && sub.Status != store.StatusActive {
			if sup, err := s.deps.Store.IsSuppressed(ctx, sub.Email); err != nil {
				s.storeError(w, r, "is suppressed", err)
				return
			} else if sup {
				s.refuse(w, r, "This alert cannot be resumed", "This address asked not to get email from us, or its emails bounced.")
				return
			}
		}
		var errState = errors.New("state")
		_, err := s.deps.Store.UpdateSubscription(ctx, id, s.cfg.Clock(), func(sub *store.Subscription) error {
			switch {
			case action == "pause" && (sub.Status == store.StatusActive || sub.Status == store.StatusPaused):
				sub.Status = store.StatusPaused
			case action == "resume" && (sub.Status == store.StatusPaused || sub.Status == store.StatusUnsubscribed ||
				sub.Status == store.StatusActive):
				sub.Status = store.StatusActive
			default:
				return errState
			}
			return nil
		})
		if errors.Is(err, errState) {
			s.refuse(w, r, "Not possible now", "The alert is "+sub.Status+"; "+statusText[sub.Status])
			return
		}
		if err != nil {
			s.storeError(w, r, action, err)
			return
		}
		log.Info("subscription "+action+"d", "by", "manage page")
		s.redirectManage(w, r, tok, action+"d")
	case "delete":
		if err := s.deleteWebhook(r, sub); err != nil {
			s.storeError(w, r, "delete webhook", err)
			return
		}
		if err := s.deps.Store.DeleteSubscription(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.storeError(w, r, "delete", err)
			return
		}
		log.Info("subscription deleted", "by", "manage page")
		s.renderMessage(w, http.StatusOK, "Alert deleted", "This alert and everything about it are deleted. Nothing more will be sent for it.")
	case "delete_all":
		all, err := s.deps.Store.SubscriptionsByEmail(ctx, sub.Email)
		if err != nil {
			s.storeError(w, r, "subscriptions by email", err)
			return
		}
		suppress := false
		for _, o := range all {
			if o.Status == store.StatusUnsubscribed || o.Status == store.StatusSuppressed {
				suppress = true
			}
			if err := s.deleteWebhook(r, o); err != nil {
				s.storeError(w, r, "delete webhook", err)
				return
			}
		}
		n, err := s.deps.Store.DeleteAllForEmail(ctx, sub.Email, suppress)
		if err == nil {
			err = s.deps.Store.ForgetRate(ctx, rateEmail, store.EmailHash(sub.Email))
		}
		if err != nil {
			s.storeError(w, r, "delete all", err)
			return
		}
		log.Info("all data of an address deleted", "email", email(sub.Email), "subscriptions", n, "suppressed", suppress)
		lines := []string{fmt.Sprintf("All your data is deleted: %d alert(s), their pending jobs and delivery records.", n)}
		if suppress {
			lines = append(lines, "Because you had unsubscribed, we keep only a one-way hash of your address so that we never email it again.")
		}
		s.renderMessage(w, http.StatusOK, "All your data is deleted", lines...)
	default:
		s.renderMessage(w, http.StatusBadRequest, "Unknown action", "Open the manage page again and use one of its buttons.")
	}
}

func (s *Server) deleteWebhook(r *http.Request, sub *store.Subscription) error {
	if s.deps.Webhooks == nil || sub.WebhookURL == "" {
		return nil
	}
	return s.deps.Webhooks.DeleteEndpoint(r.Context(), sub.ID)
}

// redirectManage sends the browser back to the manage page (POST, redirect,
// GET), with a notice.
func (s *Server) redirectManage(w http.ResponseWriter, r *http.Request, tok, done string) {
	http.Redirect(w, r, "/v1/manage?token="+url.QueryEscape(tok)+"&done="+done, http.StatusSeeOther)
}

// manageSave applies the edit form.
func (s *Server) manageSave(w http.ResponseWriter, r *http.Request, tok string, sub *store.Subscription) {
	bad := fieldErrors{}
	in, fv := parseForm(r, bad)
	in.Email = sub.Email
	in.WebhookURL = "" // not on the form; kept as is
	s.validate(&in, bad)
	if len(bad) > 0 {
		v, err := s.manageView(r, tok, sub)
		if err != nil {
			s.storeError(w, r, "subscriptions by email", err)
			return
		}
		fv.Email = sub.Email
		v.Form, v.Errors, v.Alert = fv, bad, "Please correct the fields marked below; nothing was saved."
		s.render(w, http.StatusBadRequest, "manage", v)
		return
	}
	_, err := s.deps.Store.UpdateSubscription(r.Context(), sub.ID, s.cfg.Clock(), func(sub *store.Subscription) error {
		sub.Filter, sub.Frequency, sub.Timezone, sub.SendHour, sub.WeeklyDay = in.Filter, in.Frequency, in.Timezone, in.SendHour, in.WeeklyDay
		return nil
	})
	if err != nil {
		s.storeError(w, r, "save", err)
		return
	}
	s.log.Info("subscription edited", "subscription", sub.ID, "by", "manage page")
	s.redirectManage(w, r, tok, "saved")
}

// rotateWebhook is POST /v1/subscriptions/{id}/webhook/rotate, authorised
// by the subscription's manage token (Authorization: Bearer, or ?token=).
func (s *Server) rotateWebhook(w http.ResponseWriter, r *http.Request) {
	tok, ok := bearer(r)
	if !ok {
		tok = r.URL.Query().Get("token")
	}
	if tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="jobalert manage token"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "the subscription's manage token is required (Authorization: Bearer or ?token=)", nil)
		return
	}
	id, err := s.deps.Tokens.Verify(tok, token.Manage, s.cfg.Clock())
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidToken, err.Error(), nil)
		return
	}
	if subtle.ConstantTimeCompare([]byte(id), []byte(r.PathValue("id"))) != 1 {
		writeError(w, http.StatusForbidden, "forbidden", "the token belongs to another subscription", nil)
		return
	}
	if s.deps.Webhooks == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "webhooks are not enabled on this server", nil)
		return
	}
	sub, err := s.deps.Store.GetSubscription(r.Context(), id)
	if err != nil {
		s.storeError(w, r, "get subscription", err)
		return
	}
	if sub.WebhookURL == "" {
		writeError(w, http.StatusNotFound, codeNotFound, "the subscription has no webhook", nil)
		return
	}
	secret, err := s.deps.Webhooks.RotateSecret(r.Context(), id)
	if err != nil {
		if errors.Is(err, webhook.ErrNoEndpoint) {
			writeError(w, http.StatusNotFound, codeNotFound, "the subscription has no webhook", nil)
			return
		}
		s.storeError(w, r, "rotate webhook secret", err)
		return
	}
	s.log.Info("webhook secret rotated", "subscription", id)
	writeJSON(w, http.StatusOK, map[string]string{"webhook_secret": secret})
}
