package api_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
)

// The links in a chat message are for whoever reads the channel, which
// may be shared: their pages never show the owner's address, a GET
// changes nothing, the POST turns off that one channel and tells the
// owner once, and they open nothing else (docs/channels.md, "The links
// in a message").
func TestChatLinksStopOnlyTheirChannel(t *testing.T) {
	e := newEnv(t, allowPrivate)
	ctx := context.Background()
	sub := e.active("owner@example.com", store.StatusActive)
	if _, err := e.st.UpdateSubscription(ctx, sub.ID, time.Now(), func(s *store.Subscription) error {
		s.Channels = []string{store.ChannelEmail, store.ChannelSlack, store.ChannelDiscord}
		s.SlackURL, s.DiscordURL = slackURL, discordURL
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	links := e.srv.Links()
	about, stop := links.Channel(sub.ID, store.ChannelSlack), links.ChannelStop(sub.ID, store.ChannelSlack)
	if !strings.HasPrefix(about, e.url+"/v1/channel?token=") || !strings.HasPrefix(stop, e.url+"/v1/channel/stop?token=") {
		t.Fatalf("links: got %s and %s, want /v1/channel and /v1/channel/stop", about, stop)
	}

	for _, link := range []string{about, stop} {
		page := e.do("GET", link, "", "Accept", "text/html")
		if page.status != 200 || !strings.Contains(page.body, "Stop posting here") || !strings.Contains(page.body, "backend") {
			t.Fatalf("GET %s: got %d, want 200 with the filter and a stop button\n%s", link, page.status, page.body)
		}
		for _, secret := range []string{"owner@example.com", "owner%40example.com", slackToken, discordToken} {
			if strings.Contains(page.body, secret) {
				t.Errorf("GET %s: the page shows %q; a chat link must not", link, secret)
			}
		}
	}
	if got := e.channels(sub.ID); got != "email slack discord" {
		t.Fatalf("after the GETs: channels on %q, want all three (a GET changes nothing)", got)
	}

	// Neither link opens anything else: not the manage page, not the
	// unsubscribe page.
	tok := tokenOf(t, stop)
	for _, p := range []string{"/v1/manage", "/v1/unsubscribe"} {
		if r := e.do("GET", p+"?token="+url.QueryEscape(tok), "", "Accept", "text/html"); r.status != http.StatusBadRequest {
			t.Errorf("GET %s with a chat link's token: got %d, want 400", p, r.status)
		}
	}
	// And the owner's links do not work here.
	for _, other := range []string{e.manageToken(sub.ID), e.signer.Issue(token.Unsubscribe, sub.ID, time.Time{})} {
		r := e.postForm("/v1/channel/stop", url.Values{"token": {other}})
		if r.status != http.StatusBadRequest {
			t.Errorf("POST /v1/channel/stop with an email link's token: got %d %s, want 400", r.status, r.body)
		}
	}

	// The page's button, as a browser posts it.
	r := e.postForm("/v1/channel/stop", url.Values{"token": {tok}}, "Accept", "text/html")
	if r.status != 200 || !strings.Contains(r.body, "no longer posts") || strings.Contains(r.body, "owner@example.com") {
		t.Fatalf("POST stop: got %d, want 200 saying it stopped, without the address\n%s", r.status, r.body)
	}
	if got := e.channels(sub.ID); got != "email discord" {
		t.Errorf("after the stop: channels on %q, want email discord", got)
	}
	got, err := e.st.GetSubscription(ctx, sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.StatusActive || !strings.Contains(got.Disabled[store.ChannelSlack], "link in an alert") || got.SlackURL != slackURL {
		t.Errorf("after the stop: status %s, disabled %v, slack URL kept %v; want active, slack stopped from its link, URL kept for the owner",
			got.Status, got.Disabled, got.SlackURL == slackURL)
	}
	notice := e.emailLink("owner@example.com", "/v1/manage")
	if notice == "" {
		t.Fatal("no notice to the owner")
	}
	var body string
	for _, m := range e.sink.To("owner@example.com") {
		body += m.Subject + "\n" + m.Text
	}
	if !strings.Contains(body, "Slack") || strings.Contains(body, slackToken) {
		t.Errorf("notice: got %q, want it to name Slack and never carry the webhook URL", body)
	}

	// Again (a double click, a retry as JSON): no second notice.
	again := e.do("POST", "/v1/channel/stop?token="+url.QueryEscape(tok), "")
	if again.status != 200 || again.json(t)["status"] != "stopped" || again.json(t)["channel"] != "slack" {
		t.Errorf("second POST: got %d %s, want 200 {channel: slack, status: stopped}", again.status, again.body)
	}
	if n := len(e.sink.To("owner@example.com")); n != 1 {
		t.Errorf("emails to the owner: got %d, want 1 notice", n)
	}
	if page := e.do("GET", about, "", "Accept", "text/html"); page.status != 200 || strings.Contains(page.body, "Stop posting here") {
		t.Errorf("GET after the stop: got %d, want 200 saying it no longer posts, no button\n%s", page.status, page.body)
	}

	// The owner sets Slack up again by pasting the URL on the manage
	// page (store: a new URL clears the mark); the old link then works
	// again, for the channel it names only.
	if _, err := e.st.UpdateSubscription(ctx, sub.ID, time.Now(), func(s *store.Subscription) error {
		delete(s.Disabled, store.ChannelSlack)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	dtok := tokenOf(t, links.ChannelStop(sub.ID, store.ChannelDiscord))
	if r := e.postForm("/v1/channel/stop", url.Values{"token": {dtok}}); r.status != 200 {
		t.Fatalf("POST stop discord: got %d %s", r.status, r.body)
	}
	if got := e.channels(sub.ID); got != "email slack" {
		t.Errorf("after stopping discord: channels on %q, want email slack", got)
	}

	// A deleted alert: 404, nothing sent.
	if err := e.st.DeleteSubscription(ctx, sub.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.postForm("/v1/channel/stop", url.Values{"token": {tok}}); r.status != http.StatusNotFound {
		t.Errorf("POST stop of a deleted alert: got %d %s, want 404", r.status, r.body)
	}
}

// channels lists the channels a subscription posts to now, in order.
func (e *env) channels(id string) string {
	e.t.Helper()
	sub, err := e.st.GetSubscription(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var on []string
	for _, ch := range sub.Channels {
		if sub.Has(ch) {
			on = append(on, ch)
		}
	}
	return strings.Join(on, " ")
}

// A paused alert still has its chat (it posts again once resumed), so
// its page offers the stop; an unsubscribed one posts nowhere, so a stop
// pressed on a page opened earlier changes nothing and emails no one.
func TestChatLinksFollowTheAlertsStatus(t *testing.T) {
	e := newEnv(t, allowPrivate)
	ctx := context.Background()
	setup := func(email, status string) *store.Subscription {
		sub := e.active(email, store.StatusActive)
		if _, err := e.st.UpdateSubscription(ctx, sub.ID, time.Now(), func(s *store.Subscription) error {
			s.Channels, s.SlackURL, s.Status = []string{store.ChannelEmail, store.ChannelSlack}, slackURL, status
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return sub
	}
	paused := setup("paused@example.com", store.StatusPaused)
	link := e.srv.Links().Channel(paused.ID, store.ChannelSlack)
	if page := e.do("GET", link, "", "Accept", "text/html"); page.status != 200 || !strings.Contains(page.body, "Stop posting here") || !strings.Contains(page.body, "paused") {
		t.Fatalf("GET for a paused alert: got %d, want the stop button and that it is paused\n%s", page.status, page.body)
	}
	if r := e.postForm("/v1/channel/stop", url.Values{"token": {tokenOf(t, link)}}); r.status != 200 || !strings.Contains(r.body, "owner has been told") {
		t.Fatalf("POST for a paused alert: got %d, want 200, owner told\n%s", r.status, r.body)
	}
	if got := e.channels(paused.ID); got != "email" {
		t.Errorf("paused alert after the stop: channels on %q, want email", got)
	}
	e.emailLink("paused@example.com", "/v1/manage")

	gone := setup("gone@example.com", store.StatusUnsubscribed)
	link = e.srv.Links().ChannelStop(gone.ID, store.ChannelSlack)
	if page := e.do("GET", link, "", "Accept", "text/html"); page.status != 200 || strings.Contains(page.body, "Stop posting here") {
		t.Errorf("GET for an unsubscribed alert: got %d, want 200 saying it is not posting, no button\n%s", page.status, page.body)
	}
	if r := e.postForm("/v1/channel/stop", url.Values{"token": {tokenOf(t, link)}}); r.status != 200 || strings.Contains(r.body, "owner has been told") {
		t.Errorf("POST for an unsubscribed alert: got %d, want 200 without telling anyone\n%s", r.status, r.body)
	}
	got, err := e.st.GetSubscription(ctx, gone.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Disabled) != 0 || got.Status != store.StatusUnsubscribed {
		t.Errorf("unsubscribed alert after a stop: status %s, disabled %v; want unchanged", got.Status, got.Disabled)
	}
	if n := len(e.sink.To("gone@example.com")); n != 0 {
		t.Errorf("emails to an unsubscribed owner: got %d, want 0", n)
	}
	// A manage token on these pages names the chat's link.
	if r := e.do("GET", "/v1/channel?token="+url.QueryEscape(e.manageToken(gone.ID)), "", "Accept", "text/html"); r.status != http.StatusBadRequest || !strings.Contains(r.body, "in the chat") {
		t.Errorf("GET /v1/channel with a manage token: got %d, want 400 pointing to the chat's link\n%s", r.status, r.body)
	}
}
