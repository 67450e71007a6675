package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/notifier"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/token"
)

// The pages behind the links in a chat message (Links.Channel and
// Links.ChannelStop). A Slack or Discord channel may be shared by a
// cohort or open to anyone, so these links are for whoever reads the
// channel, not for the alert's owner: they show what the alert looks
// for, never the owner's address, and the one thing they can do is stop
// the alert posting to that channel. The owner is emailed when that
// happens and turns it back on from the manage page. docs/channels.md,
// "The links in a message".

// stoppedFromChannel is the reason a channel stopped from its own link
// is off: the manage page and the owner's notice show it.
const stoppedFromChannel = "stopped with the link in an alert, by someone who reads the channel"

// channelToken verifies a chat link's token and returns the channel it
// is for, the subscription and the token; on failure it has answered.
func (s *Server) channelToken(w http.ResponseWriter, r *http.Request, tok string) (string, *store.Subscription, bool) {
	var (
		id  string
		ch  string
		err = token.ErrWrongScope
	)
	for _, c := range store.ChatChannels {
		if id, err = s.deps.Tokens.Verify(tok, token.StopChannel(c), s.cfg.Clock()); !errors.Is(err, token.ErrWrongScope) {
			ch = c
			break
		}
	}
	if err != nil {
		s.tokenError(w, r, tok, token.StopChannel("chat"), err)
		return "", nil, false
	}
	sub, ok := s.subscriptionOf(w, r, id)
	return ch, sub, ok
}

// posting reports whether the alert posts to channel ch: now, or once
// its owner resumes it (a paused alert keeps its channels).
func posting(sub *store.Subscription, ch string) bool {
	return (sub.Status == store.StatusActive || sub.Status == store.StatusPaused) && sub.Has(ch)
}

// channelPage is GET /v1/channel?token=T (ask false): what the alert
// posted to this channel looks for and how often, and a button to stop
// it posting here; and GET /v1/channel/stop?token=T (ask true), the same
// page asking only whether to stop. Neither changes anything: chat apps
// and link scanners fetch the links in messages.
func (s *Server) channelPage(ask bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token")
		ch, sub, ok := s.channelToken(w, r, tok)
		if ok {
			s.renderChannel(w, tok, ch, sub, ask)
		}
	}
}

func (s *Server) renderChannel(w http.ResponseWriter, tok, ch string, sub *store.Subscription, ask bool) {
	name := notifier.ChannelLabel(ch)
	if !posting(sub, ch) {
		s.renderMessage(w, http.StatusOK, "These alerts no longer post here",
			s.cfg.Product+" is not posting this job alert to this "+name+" chat.")
		return
	}
	title := "A job alert posted to this " + name + " chat"
	if ask {
		title = "Stop these job alerts here?"
	}
	v := s.newView(title)
	v.Summary = matcher.Summary(sub.Filter)
	v.Message = []string{
		"This " + name + " chat gets " + frequencyWords(sub.Frequency) + " alerts from " + s.cfg.Product + " for new jobs matching the above.",
		"Its owner set it up and manages it from the links in their emails. Anyone who reads this chat can stop it posting here; the owner is told, and their other alerts go on.",
	}
	if sub.Status == store.StatusPaused {
		v.Message = append(v.Message, "Its owner has paused it for now.")
	}
	v.Token, v.FormAction, v.ButtonText, v.ButtonClass = tok, "/v1/channel/stop", "Stop posting here", "danger"
	s.render(w, http.StatusOK, "action", v)
}

// frequencyWords is a subscription's frequency in a sentence.
func frequencyWords(f string) string {
	switch f {
	case "daily", "weekly":
		return f
	}
	return "instant"
}

// channelStop is POST /v1/channel/stop (token in the body, or the query):
// the alert stops posting to the channel of the link; its other channels
// go on. Like the one-click unsubscribe it needs no cookie: the signed
// token is the authority. A second press changes nothing and emails no
// one.
func (s *Server) channelStop(w http.ResponseWriter, r *http.Request) {
	tok, ok := queryOrBodyToken(w, r)
	if !ok {
		return
	}
	ch, sub, ok := s.channelToken(w, r, tok)
	if !ok {
		return
	}
	ctx := r.Context()
	was := false
	if posting(sub, ch) {
		var err error
		was, err = s.deps.Store.DisableChannel(ctx, sub.ID, ch, stoppedFromChannel, s.cfg.Clock())
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.gone(w, r)
			return
		case err != nil:
			s.storeError(w, r, "disable channel", err)
			return
		}
	}
	told := false
	if was {
		s.log.Info("chat channel stopped from its link", "subscription", sub.ID, "channel", ch)
		told = s.tellStopped(ctx, sub, ch)
	}
	if !wantsHTML(r) {
		writeJSON(w, http.StatusOK, map[string]string{"channel": ch, "status": "stopped"})
		return
	}
	name := notifier.ChannelLabel(ch)
	line := s.cfg.Product + " no longer posts this job alert to this " + name + " chat."
	if told {
		line += " Its owner has been told."
	}
	s.renderMessage(w, http.StatusOK, "Stopped", line)
}

// tellStopped emails the owner that a channel was stopped from its link
// and reports whether it went. It is the only notice (a second press
// finds the channel off), so it is not cut short by the person who
// pressed leaving the page. A failure is logged, not answered: the
// channel is off either way, and the manage page shows it.
func (s *Server) tellStopped(ctx context.Context, sub *store.Subscription, ch string) bool {
	ctx = context.WithoutCancel(ctx)
	if suppressed, err := s.deps.Store.IsSuppressed(ctx, sub.Email); err != nil || suppressed {
		return false
	}
	name := notifier.ChannelLabel(ch)
	msg, err := s.deps.Renderer.Notice(notifier.Notice{
		To: sub.Email, Subject: "Your " + name + " job alerts were stopped",
		Title: "Your job alert no longer posts to " + name,
		Lines: []string{
			"Someone who reads the " + name + " chat your job alert for " + matcher.Summary(sub.Filter) +
				" posts to stopped it posting there, with the link at the bottom of an alert.",
			"Your other channels are not affected and keep getting your alerts.",
			"If that was not wanted, set " + name + " up again on the manage page.",
		},
		ActionURL: s.links.Manage(sub.ID, sub.TokenVersion), ActionText: "Manage this alert",
	})
	if err == nil {
		err = s.send(ctx, notifier.KindNotice, msg)
	}
	if err != nil {
		s.log.Warn("channel-stopped notice not sent", "subscription", sub.ID, "channel", ch, "err", err)
		return false
	}
	return true
}
