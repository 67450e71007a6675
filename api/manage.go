package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/jobalert/jobalert/internal/redact"
	"github.com/jobalert/jobalert/matcher"
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
	"saved":        "Your changes are saved.",
	"feed_rotated": "Your feed has a new link (below). The old one has stopped working: paste the new one into your feed reader.",
	"paused":       "The alert is paused.",
	"resumed":      "The alert is active again.",
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
	tok := r.URL.Query().Get("token")
	sub, ok := s.verifyVersioned(w, r, tok, token.Manage)
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
	v.Summary = matcher.Summary(sub.Filter)
	v.WebhookHost = urlHost(sub.WebhookURL)
	v.Others = len(all) - 1
	links, err := s.linksFor(r.Context(), sub.ID, sub.Channels, sub)
	if err != nil {
		return nil, err
	}
	v.Chan = &channelState{SlackMasked: maskURL(sub.SlackURL), DiscordMasked: maskURL(sub.DiscordURL), WebhookHost: v.WebhookHost,
		Disabled: sub.Disabled, TelegramLink: links.TelegramLink, FeedURL: links.FeedURL,
		TelegramConnected: sub.TelegramChat != 0 && links.TelegramLink == ""}
	for _, c := range sub.Channels {
		v.Offer[c] = true // what it has stays on the page, offered or not
	}
	if sub.Status == store.StatusActive {
		v.Message = []string{scheduleText(sub)}
	}
	return v, nil
}

// manage is POST /v1/manage: the manage page's forms, told apart by
// "action": save, pause, resume, delete, sign_out, rotate_feed (a new
// feed URL; the old one dies at once), and delete_all and
// rotate_webhook, which only email a link that confirms them.
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
	sub, ok := s.verifyVersioned(w, r, tok, token.Manage)
	if !ok {
		return
	}
	id := sub.ID
	if !s.checkCSRF(tok, r.PostFormValue("csrf")) {
		v := s.newView("This form has expired")
		v.Message = []string{"For your safety the manage page's forms work for a limited time. Open the page again and retry."}
		v.Link, v.LinkText = "/v1/manage?token="+url.QueryEscape(tok), "Open the manage page"
		s.render(w, http.StatusForbidden, "message", v)
		return
	}
	ctx := r.Context()
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
		if err := s.deleteFeed(ctx, id); err != nil {
			s.storeError(w, r, "delete feed", err)
			return
		}
		if err := s.deps.Store.DeleteSubscription(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.storeError(w, r, "delete", err)
			return
		}
		log.Info("subscription deleted", "by", "manage page")
		s.renderMessage(w, http.StatusOK, "Alert deleted", "This alert and everything about it are deleted. Nothing more will be sent for it.")
	case "sign_out":
		v, err := s.deps.Store.RevokeLinks(ctx, id)
		if err != nil {
			s.storeError(w, r, "sign out", err)
			return
		}
		sub.TokenVersion = v
		log.Info("manage links signed out", "by", "manage page")
		lines := []string{"Every earlier link to manage this alert has stopped working. Unsubscribe links in your emails still work."}
		if err := s.sendActionLink(r, sub, "Your new link to manage your job alert", "A new link to manage your job alert",
			[]string{"You signed out of every earlier link to manage this alert. This is the new one; the next alert email carries one too."},
			s.links.Manage(sub.ID, v), "Manage this alert", s.cfg.ManageTTL); err != nil {
			log.Warn("new manage link not sent", "err", err)
			lines = append(lines, "The next alert email carries a new manage link.")
		} else {
			lines = append(lines, "We emailed you a new manage link.")
		}
		s.renderMessage(w, http.StatusOK, "Signed out of all links", lines...)
	case "delete_all":
		if err := s.sendActionLink(r, sub, "Confirm: delete all your job alert data", "Confirm that all your data should be deleted",
			[]string{"Someone with a link to manage your job alert asked to delete every alert of this address and everything about them. Nothing is deleted until you confirm."},
			s.links.DeleteAll(sub.ID, sub.TokenVersion), "Review and delete", s.cfg.ActionTTL); err != nil {
			s.actionLinkError(w, r, err)
			return
		}
		log.Info("delete-all confirmation link sent")
		s.renderMessage(w, http.StatusOK, "Check your inbox",
			"We emailed "+sub.Email+" a link to confirm that all its data should be deleted. It works for "+humanTTL(s.cfg.ActionTTL)+".")
	case "rotate_webhook":
		if sub.WebhookURL == "" || s.deps.Webhooks == nil {
			s.refuse(w, r, "No webhook", "This alert has no webhook.")
			return
		}
		if err := s.sendRotationLink(r, sub); err != nil {
			s.actionLinkError(w, r, err)
			return
		}
		log.Info("webhook rotation link sent")
		s.renderMessage(w, http.StatusOK, "Check your inbox",
			"We emailed "+sub.Email+" a link that rotates the webhook secret and shows the new one. It works for "+humanTTL(s.cfg.ActionTTL)+".")
	case "rotate_feed":
		if s.deps.Feeds == nil || !sub.Has(store.ChannelFeed) {
			s.refuse(w, r, "No feed", "This alert has no feed. Tick Feed under \"Where\" and save to get one.")
			return
		}
		if _, err := s.deps.Feeds.Rotate(ctx, id); err != nil {
			s.storeError(w, r, "rotate feed", err)
			return
		}
		log.Info("feed link replaced", "by", "manage page")
		s.redirectManage(w, r, tok, "feed_rotated")
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
	s.validate(&in, bad, sub)
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
	var removed []string
	_, err := s.deps.Store.UpdateSubscription(r.Context(), sub.ID, s.cfg.Clock(), func(sub *store.Subscription) error {
		sub.Filter, sub.Frequency, sub.Timezone, sub.SendHour, sub.WeeklyDay = in.Filter, in.Frequency, in.Timezone, in.SendHour, in.WeeklyDay
		removed = applyChannels(sub, in)
		return nil
	})
	if err != nil {
		s.storeError(w, r, "save", err)
		return
	}
	// A feed turned off is deleted: its URL stops working, as the person
	// expects of a private feed they switched off.
	if contains(removed, store.ChannelFeed) {
		if err := s.deleteFeed(r.Context(), sub.ID); err != nil {
			s.log.Error("feed of a subscription not deleted after its channel was turned off", "subscription", sub.ID, "err", err)
		}
	}
	s.log.Info("subscription edited", "subscription", sub.ID, "by", "manage page")
	s.redirectManage(w, r, tok, "saved")
}

// rotateWebhook is POST /v1/subscriptions/{id}/webhook/rotate, authorised
// by the subscription's manage token (Authorization: Bearer, or ?token=).
// It does not rotate: it emails the address a short-lived link whose page
// rotates the secret and shows the new one, so a forwarded alert cannot be
// turned into a signing key (202).
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
	c, err := s.deps.Tokens.VerifyClaims(tok, token.Manage, s.cfg.Clock())
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidToken, err.Error(), nil)
		return
	}
	if subtle.ConstantTimeCompare([]byte(c.Subject), []byte(r.PathValue("id"))) != 1 {
		writeError(w, http.StatusForbidden, codeForbidden, "the token belongs to another subscription", nil)
		return
	}
	sub, ok := s.verifyVersioned(w, r, tok, token.Manage)
	if !ok {
		return
	}
	if s.deps.Webhooks == nil || sub.WebhookURL == "" {
		writeError(w, http.StatusNotFound, codeNotFound, "the subscription has no webhook", nil)
		return
	}
	if err := s.sendRotationLink(r, sub); err != nil {
		s.actionLinkError(w, r, err)
		return
	}
	s.log.Info("webhook rotation link sent", "subscription", sub.ID, "by", "api")
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "confirmation_sent",
		"message": "a link that rotates the secret and shows the new one was emailed to the subscription's address"})
}

// sendRotationLink emails the link whose page rotates the webhook secret
// and shows the new one (the manage page's button and the API call).
func (s *Server) sendRotationLink(r *http.Request, sub *store.Subscription) error {
	return s.sendActionLink(r, sub, "Confirm: rotate your webhook secret", "Rotate your webhook signing secret",
		[]string{"Someone with a link to manage your job alert asked for a new webhook signing secret for " + urlHost(sub.WebhookURL) +
			". The new secret is shown only on the page this link opens."},
		s.links.RotateWebhook(sub.ID, sub.TokenVersion), "Rotate the secret", s.cfg.ActionTTL)
}

// errTooManyLinks is an address that was emailed too many links this hour.
var errTooManyLinks = errors.New("too many links were emailed to this address in the last hour")

// sendActionLink emails the subscription's address a service notice with
// one link, at most actionLinksPerHour an address.
func (s *Server) sendActionLink(r *http.Request, sub *store.Subscription, subject, title string, lines []string, link, button string, ttl time.Duration) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.SendTimeout+5*time.Second)
	defer cancel()
	limits := []store.Limit{{Kind: store.RateLinks, Value: s.deps.Store.AddressKey(sub.Email), Max: actionLinksPerHour, Window: time.Hour}}
	full, _, err := s.deps.Store.Reserve(ctx, limits)
	if err != nil {
		return err
	}
	if full != nil {
		return errTooManyLinks
	}
	msg, err := s.deps.Renderer.Notice(notifier.Notice{To: sub.Email, Subject: subject, Title: title, Lines: lines,
		ActionURL: link, ActionText: button, ValidFor: ttl})
	if err == nil {
		err = s.send(ctx, notifier.KindNotice, msg)
	}
	if err != nil {
		_ = s.deps.Store.Release(ctx, limits)
	}
	return err
}

// actionLinksPerHour caps the links one address may have emailed.
const actionLinksPerHour = 5

func (s *Server) actionLinkError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errTooManyLinks) {
		w.Header().Set("Retry-After", "3600")
		if !wantsHTML(r) {
			writeError(w, http.StatusTooManyRequests, codeLimited, err.Error()+"; try again later", nil)
			return
		}
		s.renderMessage(w, http.StatusTooManyRequests, "Please try again later", upperFirst(err.Error())+".")
		return
	}
	s.log.Error("action link not sent", "err", err)
	w.Header().Set("Retry-After", "60")
	if !wantsHTML(r) {
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, "the email could not be sent; try again in a minute", nil)
		return
	}
	s.renderMessage(w, http.StatusServiceUnavailable, "Please try again", "The email could not be sent. Nothing was changed; try again in a minute.")
}

// humanTTL says a link lifetime in words.
func humanTTL(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return plural(int(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int(d/time.Hour), "hour")
	default:
		return plural(max(1, int(d/time.Minute)), "minute")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// deleteAllPage is GET /v1/manage/delete-all?token=T, from the emailed
// link: one button that POSTs the token. Nothing changes on GET.
func (s *Server) deleteAllPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	sub, ok := s.verifyVersioned(w, r, tok, token.DeleteAll)
	if !ok {
		return
	}
	all, err := s.deps.Store.SubscriptionsByEmail(r.Context(), sub.Email)
	if err != nil {
		s.storeError(w, r, "subscriptions by email", err)
		return
	}
	v := s.newView("Delete all your data?")
	v.Message = []string{fmt.Sprintf("This deletes all %d alert(s) of %s, their pending jobs, webhook deliveries and delivery records. It cannot be undone.", len(all), sub.Email)}
	v.Token, v.FormAction, v.ButtonText, v.ButtonClass = tok, "/v1/manage/delete-all", "Delete all my data", "danger"
	s.render(w, http.StatusOK, "action", v)
}

// postedLink reads and verifies the token that the page of an emailed
// link (delete-all, rotate-webhook) POSTs, after the cross-origin check;
// on failure it has answered.
func (s *Server) postedLink(w http.ResponseWriter, r *http.Request, scope token.Scope) (string, *store.Subscription, bool) {
	if err := s.cop.Check(r); err != nil {
		s.renderMessage(w, http.StatusForbidden, "Form refused", "This form was sent from another site. Open the link from the email again.")
		return "", nil, false
	}
	tok, err := tokenFromBody(w, r)
	if err != nil {
		bodyError(w, err)
		return "", nil, false
	}
	sub, ok := s.verifyVersioned(w, r, tok, scope)
	return tok, sub, ok
}

// deleteAll is POST /v1/manage/delete-all with the emailed token.
func (s *Server) deleteAll(w http.ResponseWriter, r *http.Request) {
	_, sub, ok := s.postedLink(w, r, token.DeleteAll)
	if !ok {
		return
	}
	ctx := r.Context()
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
		if err := s.deleteFeed(ctx, o.ID); err != nil {
			s.storeError(w, r, "delete feed", err)
			return
		}
	}
	n, err := s.deps.Store.DeleteAllForEmail(ctx, sub.Email, suppress)
	if err != nil {
		s.storeError(w, r, "delete all", err)
		return
	}
	s.log.Info("all data of an address deleted", "email", redact.Address(sub.Email), "subscriptions", n, "suppressed", suppress)
	lines := []string{fmt.Sprintf("All your data is deleted: %d alert(s), their pending jobs, webhook deliveries and delivery records.", n)}
	if suppress {
		lines = append(lines, "Because you had unsubscribed, we keep only a keyed one-way hash of your address so that we never email it again.")
	}
	s.renderMessage(w, http.StatusOK, "All your data is deleted", lines...)
}

// rotatePage is GET /v1/manage/rotate-webhook?token=T, from the emailed
// link: one button that POSTs the token. Nothing changes on GET.
func (s *Server) rotatePage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	sub, ok := s.verifyVersioned(w, r, tok, token.RotateWebhook)
	if !ok {
		return
	}
	v := s.newView("Rotate your webhook secret?")
	v.Summary = matcher.Summary(sub.Filter)
	v.Message = []string{"A new signing secret replaces the current one for the webhook on " + urlHost(sub.WebhookURL) +
		". For a day both sign each delivery, so your receiver can switch over. The new secret is shown once, on the next page."}
	v.Token, v.FormAction, v.ButtonText = tok, "/v1/manage/rotate-webhook", "Rotate the secret"
	s.render(w, http.StatusOK, "action", v)
}

// rotate is POST /v1/manage/rotate-webhook with the emailed token: the
// rotation, once per link, and the one page that shows the new secret.
func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	tok, sub, ok := s.postedLink(w, r, token.RotateWebhook)
	if !ok {
		return
	}
	if s.deps.Webhooks == nil || sub.WebhookURL == "" {
		s.refuse(w, r, "No webhook", "This alert has no webhook.")
		return
	}
	first, err := s.deps.Store.UseOnce(r.Context(), tok, s.cfg.ActionTTL)
	if err != nil {
		s.storeError(w, r, "use once", err)
		return
	}
	if !first {
		s.refuse(w, r, "This link was used already", "Each rotation link works once. Ask for a new one from the manage page.")
		return
	}
	secret, err := s.deps.Webhooks.RotateSecret(r.Context(), sub.ID)
	if err != nil {
		if errors.Is(err, webhook.ErrNoEndpoint) {
			s.refuse(w, r, "No webhook", "This alert has no webhook.")
			return
		}
		s.storeError(w, r, "rotate webhook secret", err)
		return
	}
	s.log.Info("webhook secret rotated", "subscription", sub.ID)
	if !wantsHTML(r) {
		writeJSON(w, http.StatusOK, map[string]string{"webhook_secret": secret})
		return
	}
	v := s.newView("Your new webhook secret")
	v.Message = []string{"Copy it now into your receiver: it is not shown again. Deliveries to " + urlHost(sub.WebhookURL) +
		" are signed with both the old and the new secret for a day."}
	v.Secret = secret
	s.render(w, http.StatusOK, "action", v)
}

// revokeLinks is POST /v1/admin/subscriptions/{id}/revoke-links (admin):
// every manage link issued so far stops working.
func (s *Server) revokeLinks(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, err := s.deps.Store.RevokeLinks(r.Context(), id)
	if err != nil {
		s.adminStoreError(w, "revoke links", err)
		return
	}
	s.log.Info("manage links signed out", "subscription", id, "by", "admin")
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "token_version": v})
}
