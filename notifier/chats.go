package notifier

import (
	"context"
	"time"

	"github.com/jobalert/jobalert/channel"
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
