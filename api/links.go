package api

import (
	"net/url"
	"strings"
	"time"

	"github.com/jobalert/jobalert/token"
)

// Links builds the absolute, token-carrying URLs that emails and pages link
// to. It satisfies notifier.Links (Unsubscribe, Manage). It is safe for
// concurrent use.
type Links struct {
	base       string
	tokens     Issuer
	confirmTTL time.Duration
	now        func() time.Time
}

// NewLinks returns a link builder for publicURL (JOBALERT_PUBLIC_URL).
// Confirmation links expire after confirmTTL (7 days when 0); unsubscribe
// and manage links do not expire, as they sit in old emails. A nil clock
// means time.Now.
func NewLinks(publicURL string, tokens Issuer, confirmTTL time.Duration, clock func() time.Time) *Links {
	if confirmTTL <= 0 {
		confirmTTL = 7 * 24 * time.Hour
	}
	if clock == nil {
		clock = time.Now
	}
	return &Links{base: strings.TrimSuffix(publicURL, "/"), tokens: tokens, confirmTTL: confirmTTL, now: clock}
}

// Confirm returns the double opt-in link: GET /v1/confirm?token=T.
func (l *Links) Confirm(subID string) string {
	return l.url("/v1/confirm", l.tokens.Issue(token.Confirm, subID, l.now().Add(l.confirmTTL)))
}

// Unsubscribe returns the one-click unsubscribe link (List-Unsubscribe):
// /v1/unsubscribe?token=T.
func (l *Links) Unsubscribe(subID string) string {
	return l.url("/v1/unsubscribe", l.tokens.Issue(token.Unsubscribe, subID, time.Time{}))
}

// Manage returns the manage page link: /v1/manage?token=T.
func (l *Links) Manage(subID string) string {
	return l.url("/v1/manage", l.ManageToken(subID))
}

// ManageToken returns a bare manage token, e.g. for
// POST /v1/subscriptions/{id}/webhook/rotate.
func (l *Links) ManageToken(subID string) string {
	return l.tokens.Issue(token.Manage, subID, time.Time{})
}

func (l *Links) url(path, tok string) string {
	return l.base + path + "?token=" + url.QueryEscape(tok)
}
