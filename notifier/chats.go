package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/internal/redact"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

// Chat posts alerts to one chat channel (Slack, Discord, Telegram). The
// service-specific senders live in channel/…; the wiring adapts them, so
// that the digest engine depends on the message model only.
type Chat interface {
	// Send posts msg to the subscription's destination on this channel.
	// An alert may take several messages; the first from of them were
	// accepted by an earlier try and are skipped. It returns how many of
	// the alert's messages are accepted in all (from included), and an
	// error wrapping channel.ErrGone (the destination was deleted or
	// blocked us: disable the channel), channel.ErrPermanent (this
	// message will never be accepted: dead-letter it), or anything else,
	// temporary (a *channel.TemporaryError may say how long to wait).
	Send(ctx context.Context, sub *store.Subscription, msg channel.Message, from int) (sent int, err error)
}

// Feed is the subscriber's private Atom feed (channel/feed.Store): the
// digest engine appends a digest's jobs too, so that a match the
// consumer's feed tap missed (a subscription changed in the same second)
// is in the feed by the time it is alerted. Append is idempotent per job.
type Feed interface {
	Append(ctx context.Context, subID string, jobs []channel.Job, now time.Time) error
}

// message is the digest as the chat channels and the feed receive it:
// the jobs the email lists, formatted as the email formats them. Its
// links are chatMessage's.
func (d *Digester) message(rec *store.DigestRecord, sub *store.Subscription, jobs []matcher.Job, more int) channel.Message {
	m := channel.Message{Kind: channel.Alert, Frequency: sub.Frequency, Filter: sub.Filter, More: more}
	if rec.Kind == store.KindRollup {
		m.Kind = channel.CapRollup
	}
	for i := range jobs {
		m.Jobs = append(m.Jobs, channel.FromMatcher(&jobs[i], FormatSalary(jobs[i].Salary)))
	}
	return m
}

// chatMessage is msg with the links of chat channel ch. They are not the
// email's manage and unsubscribe links: whoever reads a shared Slack or
// Discord channel can follow them, so they open a page that shows no
// address and can only stop the alert posting to that channel
// (docs/channels.md, "The links in a message").
func (d *Digester) chatMessage(msg channel.Message, sub *store.Subscription, ch string) channel.Message {
	msg.ManageURL, msg.UnsubscribeURL = d.links.Channel(sub.ID, ch), d.links.ChannelStop(sub.ID, ch)
	msg.MoreURL = msg.ManageURL
	return msg
}

// sendChat posts msg to one chat channel of the subscription and records
// the outcome in the digest's ledger (docs/channels.md, "How failures
// disable a channel"):
//
//   - accepted: the channel is marked done;
//   - some of a multi-message alert accepted, then a failure: how many
//     is recorded first, so that any later try resumes after them;
//   - gone: the channel is turned off, its owner told by email (once),
//     and the channel marked done;
//   - permanent: the message is dead-lettered and the channel marked
//     done;
//   - temporary: the failure is counted; the digest is retried (after
//     the wait the service asked for, if longer than the backoff) until
//     ChatAttempts, then the message is dead-lettered.
//
// Like the email, the mark follows the send: a crash between the two
// posts this message again, and only it.
func (d *Digester) sendChat(ctx context.Context, log *slog.Logger, rec *store.DigestRecord, sub *store.Subscription, ch string, chat Chat, msg channel.Message, leaseUntil time.Time, p *pass) {
	if ch == store.ChannelTelegram && sub.TelegramChat == 0 {
		// Chosen but not bound yet (the person has not pressed Start):
		// there is no chat to post this alert to, and it is not kept for
		// later; the alerts after the binding go there.
		d.markChannel(ctx, log, rec.ID, ch, p)
		return
	}
	// The lease bounds the send, as it bounds the start of a digest
	// (sendAll): past it another replica may take the digest and post
	// the same message. A sender waits out rate limits itself, so the
	// send gets the time left but a quarter of the lease.
	left := leaseUntil.Sub(d.cfg.Clock.Now())
	if left < d.cfg.Lease/2 {
		p.later(0)
		return
	}
	host := chatHost(sub, ch)
	if wait := d.breaker.held(host); wait > 0 {
		// The service is failing (breaker.go): no request, no try
		// counted; the digest comes back when the hold ends.
		d.metrics.chatHeld(ch)
		p.later(wait)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, left-d.cfg.Lease/4)
	from := rec.Sent[ch]
	sent, err := chat.Send(sctx, sub, msg, from)
	cancel()
	d.breaker.record(ctx, host, err)
	d.metrics.chat(ch, err)
	if err == nil {
		d.markChannel(ctx, log, rec.ID, ch, p)
		p.delivered = true
		return
	}
	if sent > from {
		kept := ""
		if rec.Messages[ch] == "" {
			b, merr := json.Marshal(msg)
			if merr != nil { // a Message always encodes
				log.Error("encode chat message failed", "err", merr)
				p.later(0)
				return
			}
			kept = string(b)
		}
		if perr := d.persist(ctx, rec.ID, "record "+ch+" progress", func() error {
			return d.store.SetDigestSent(ctx, rec.ID, ch, sent, kept)
		}); perr != nil {
			log.Error("record chat progress failed; its accepted messages may be posted again", "channel", ch, "err", perr)
			p.later(0)
			return
		}
		rec.Sent[ch] = sent
		p.delivered = true
	}
	// The senders' errors carry no URL or token; redact.Error makes sure
	// of it, since the reason is stored, logged and mailed.
	reason := redact.Error(err)
	now := d.cfg.Clock.Now()
	switch {
	case errors.Is(err, channel.ErrGone):
		was, derr := d.store.DisableChannel(ctx, sub.ID, ch, reason, now)
		if errors.Is(derr, store.ErrNotFound) {
			d.markChannel(ctx, log, rec.ID, ch, p) // deleted meanwhile: nothing to turn off
			return
		}
		if derr != nil {
			log.Warn("disable chat channel failed; retrying later", "channel", ch, "err", derr)
			p.later(0)
			return
		}
		log.Warn("chat channel gone; turned off", "subscription", sub.ID, "channel", ch, "reason", reason, "was_on", was)
		if was {
			d.tellDisabled(ctx, log, sub, ch, reason)
		}
		d.markChannel(ctx, log, rec.ID, ch, p)
	case errors.Is(err, channel.ErrPermanent):
		log.Warn("chat message refused; dead-lettered", "subscription", sub.ID, "channel", ch, "reason", reason)
		d.deadLetter(ctx, log, rec, ch, msg, rec.ChannelAttempts[ch]+1, reason, now, p)
	default:
		n, ferr := d.store.FailDigestChannel(ctx, rec.ID, ch)
		if ferr != nil {
			p.later(0)
			return
		}
		if n >= d.cfg.ChatAttempts {
			log.Warn("chat message failed its every try; dead-lettered", "subscription", sub.ID, "channel", ch, "attempts", n, "reason", reason)
			d.deadLetter(ctx, log, rec, ch, msg, n, reason, now, p)
			return
		}
		log.Info("chat message failed; retrying later", "channel", ch, "attempt", n, "reason", reason)
		var tmp *channel.TemporaryError
		if errors.As(err, &tmp) {
			p.later(tmp.After)
		} else {
			p.later(0)
		}
	}
}

// markChannel records that a channel of a digest is done, retried like
// the email's mark (persist); a mark that cannot be written leaves the
// digest to be retried, which can post that channel's message again.
func (d *Digester) markChannel(ctx context.Context, log *slog.Logger, id, ch string, p *pass) {
	if err := d.persist(ctx, id, "mark "+ch+" done", func() error { return d.store.MarkDigest(ctx, id, ch) }); err != nil {
		log.Error("mark channel done failed; its message may be posted again", "channel", ch, "err", err)
		p.later(0)
	}
}

// deadLetter keeps a chat channel's message for replay (as JSON of the
// channel.Message, with how many of its messages were accepted) and
// marks the channel done.
func (d *Digester) deadLetter(ctx context.Context, log *slog.Logger, rec *store.DigestRecord, ch string, msg channel.Message, attempts int, reason string, now time.Time, p *pass) {
	b, err := json.Marshal(msg)
	if err != nil { // a Message always encodes; kept for the vet
		log.Error("encode chat dead letter failed", "err", err)
		p.later(0)
		return
	}
	dl := store.ChatDeadLetter{DigestID: rec.ID, SubscriptionID: rec.SubscriptionID, Channel: ch, Reason: reason,
		Attempts: attempts, DiedAt: now, Message: string(b), Sent: rec.Sent[ch]}
	if err := d.store.AddChatDeadLetter(ctx, dl, d.cfg.ChatDeadLetterTTL); err != nil {
		log.Warn("store chat dead letter failed; retrying later", "channel", ch, "err", err)
		p.later(0)
		return
	}
	d.metrics.chatDead(ch)
	d.markChannel(ctx, log, rec.ID, ch, p)
}

// tellDisabled emails the owner that a chat channel was turned off. It
// is sent once (DisableChannel reports the change once); a failure is
// logged, not retried: the manage page shows the channel off too.
func (d *Digester) tellDisabled(ctx context.Context, log *slog.Logger, sub *store.Subscription, ch, reason string) {
	if suppressed, err := d.store.IsSuppressed(ctx, sub.Email); err != nil || suppressed {
		return
	}
	msg, err := d.render.ChannelDisabled(ChannelDisabledEmail{To: sub.Email, Channel: ch, Reason: reason,
		ManageURL: d.links.Manage(sub.ID, sub.TokenVersion)})
	if err == nil {
		err = d.mail.Send(ctx, msg)
		d.metrics.CountEmail(KindNotice, err)
	}
	if err != nil {
		log.Warn("channel-disabled notice not sent", "subscription", sub.ID, "channel", ch, "err", err)
	}
}

// replay sends a chat dead letter's message again (store.KindReplay):
// the digest carries that one channel's message, decoded as it died; a
// channel the subscription no longer has (or that has no sender here) is
// simply done.
func (d *Digester) replay(ctx context.Context, log *slog.Logger, rec *store.DigestRecord, sub *store.Subscription, leaseUntil time.Time, p *pass) {
	for ch, raw := range rec.Messages {
		if rec.Done[ch] {
			continue
		}
		chat := d.cfg.Chats[ch]
		if chat == nil || !sub.Has(ch) {
			log.Info("replayed chat message dropped: the channel is off", "subscription", sub.ID, "channel", ch)
			d.markChannel(ctx, log, rec.ID, ch, p)
			continue
		}
		var msg channel.Message
		if err := json.Unmarshal([]byte(raw), &msg); err != nil {
			log.Error("replayed chat message unreadable; dropped", "channel", ch, "err", err)
			d.markChannel(ctx, log, rec.ID, ch, p)
			continue
		}
		if rec.Sent[ch] == 0 {
			// Its links as a message sent now carries them: one that died
			// before chat links existed carried the owner's. (With parts
			// already posted the message stays as it was: new links could
			// move where it splits.)
			msg = d.chatMessage(msg, sub, ch)
		}
		d.sendChat(ctx, log, rec, sub, ch, chat, msg, leaseUntil, p)
	}
}

// appendFeed adds the digest's jobs to the subscription's feed, once
// (the ledger's "feed" line; Append is idempotent per job anyway).
func (d *Digester) appendFeed(ctx context.Context, log *slog.Logger, rec *store.DigestRecord, sub *store.Subscription, jobs []channel.Job, p *pass) {
	if err := d.cfg.Feed.Append(ctx, sub.ID, jobs, d.cfg.Clock.Now()); err != nil {
		log.Warn("feed append failed; retrying later", "err", err)
		p.later(0)
		return
	}
	d.markChannel(ctx, log, rec.ID, store.ChannelFeed, p)
}
