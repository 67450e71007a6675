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
	base   string
	tokens Issuer
	ttl    LinkTTLs
	now    func() time.Time
}

// LinkTTLs are the lifetimes of the links that expire. Unsubscribe links
// never do: stopping email is always allowed, and a dead unsubscribe link
// turns into a spam report.
type LinkTTLs struct {
	Confirm time.Duration // double opt-in; default 7 days
	Manage  time.Duration // manage page; default 90 days
	Action  time.Duration // emailed "delete all" and webhook rotation; default 1 hour
}

// NewLinks returns a link builder for publicURL (JOBALERT_PUBLIC_URL). Zero
// lifetimes take their defaults; a nil clock means time.Now.
func NewLinks(publicURL string, tokens Issuer, ttl LinkTTLs, clock func() time.Time) *Links {
	if ttl.Confirm <= 0 {
		ttl.Confirm = 7 * 24 * time.Hour
	}
	if ttl.Manage <= 0 {
		ttl.Manage = 90 * 24 * time.Hour
	}
	if ttl.Action <= 0 {
		ttl.Action = time.Hour
	}
	if clock == nil {
		clock = time.Now
	}
	return &Links{base: strings.TrimSuffix(publicURL, "/"), tokens: tokens, ttl: ttl, now: clock}
}

// Confirm returns the double opt-in link: GET /v1/confirm?token=T.
func (l *Links) Confirm(subID string) string {
	return l.url("/v1/confirm", l.tokens.Issue(token.Confirm, subID, l.now().Add(l.ttl.Confirm)))
}

// Unsubscribe returns the one-click unsubscribe link (List-Unsubscribe):
// /v1/unsubscribe?token=T. It never expires and is not revoked by "sign
// out of all links".
func (l *Links) Unsubscribe(subID string) string {
	return l.url("/v1/unsubscribe", l.tokens.Issue(token.Unsubscribe, subID, time.Time{}))
}

// Manage returns the manage page link, /v1/manage?token=T, for the
// subscription's current token version.
func (l *Links) Manage(subID string, version int) string {
	return l.url("/v1/manage", l.ManageToken(subID, version))
}

// ManageToken returns a bare manage token, e.g. for
// POST /v1/subscriptions/{id}/webhook/rotate.
func (l *Links) ManageToken(subID string, version int) string {
	return l.tokens.IssueVersion(token.Manage, subID, version, l.now().Add(l.ttl.Manage))
}

// DeleteAll returns the emailed link that confirms "delete all my data".
func (l *Links) DeleteAll(subID string, version int) string {
	return l.url("/v1/manage/delete-all", l.tokens.IssueVersion(token.DeleteAll, subID, version, l.now().Add(l.ttl.Action)))
}

// RotateWebhook returns the emailed link that confirms a webhook secret
// rotation; the page it opens shows the new secret.
func (l *Links) RotateWebhook(subID string, version int) string {
	return l.url("/v1/manage/rotate-webhook", l.tokens.IssueVersion(token.RotateWebhook, subID, version, l.now().Add(l.ttl.Action)))
}

// Channel returns the link a chat message carries as "Manage this
// alert": /v1/channel?token=T, a page about the alert for whoever reads
// the channel it is posted to (ch: store.ChannelSlack, ...), which shows
// no address and can only stop the posting there. Like the unsubscribe
// link it never expires, since chat messages stay in the channel's
// history.
func (l *Links) Channel(subID, ch string) string {
	return l.url("/v1/channel", l.tokens.Issue(token.StopChannel(ch), subID, time.Time{}))
}

// ChannelStop returns a chat message's "Unsubscribe" link:
// /v1/channel/stop?token=T, the same token, opening the page that asks
// to stop posting there (a GET changes nothing: chat apps fetch links
// for their previews).
func (l *Links) ChannelStop(subID, ch string) string {
	return l.url("/v1/channel/stop", l.tokens.Issue(token.StopChannel(ch), subID, time.Time{}))
}

func (l *Links) url(path, tok string) string {
	return l.base + path + "?token=" + url.QueryEscape(tok)
}
