package notifier

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/store"
)

// A chat service that is down (Slack or Discord answering 5xx, a request
// timing out, Telegram unreachable) would otherwise hold a digest worker
// for a request timeout on every digest that has that channel, and the
// workers are the ones that send everyone's email. The breaker counts
// failures in a row per destination host; past breakerThreshold it holds
// that host for a cool-down, during which its channel is put off (the
// digest comes back once the hold ends) without a request and without
// counting a try, so a long outage delays chat alerts instead of
// dead-lettering them. After the hold one send goes, a probe, while the
// others wait for it: a success closes the breaker, a failure holds the
// host again, twice as long, up to breakerMaxHold. Each process keeps its own: a replica
// learns of an outage from its own failures. docs/channels.md, "When a
// chat service is down".
const (
	breakerThreshold = 5
	breakerFirstHold = 15 * time.Second
	breakerMaxHold   = 5 * time.Minute
)

// breakerProbeWindow is how long the other sends wait for a probe's
// outcome: longer than a request's timeout (15 s), so a probe that hangs
// is not joined by the others; a probe that never reports (cut short by
// shutdown) lets another go after it.
const breakerProbeWindow = 20 * time.Second

type breaker struct {
	now   func() time.Time
	mu    sync.Mutex
	hosts map[string]*hostState
}

type hostState struct {
	fails      int           // failures in a row
	hold       time.Duration // the last hold (0: never tripped); doubled when a probe fails
	until      time.Time     // held until
	probeUntil time.Time     // a probe is out until then
}

func newBreaker(now func() time.Time) *breaker {
	return &breaker{now: now, hosts: map[string]*hostState{}}
}

// held returns how long host's sends are put off; 0 when this one may go.
// Once a hold has ended, exactly one caller gets 0, the probe, and the
// others wait for its outcome (breakerProbeWindow at most): with four
// digest workers, a dead service costs one request per hold, not four.
func (b *breaker) held(host string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.hosts[host]
	if h == nil {
		return 0
	}
	now := b.now()
	switch {
	case now.Before(h.until):
		return h.until.Sub(now)
	case h.hold == 0:
		return 0 // failing, not yet tripped
	case now.Before(h.probeUntil):
		return h.probeUntil.Sub(now)
	}
	h.probeUntil = now.Add(breakerProbeWindow)
	return 0
}

// record notes a send's outcome. Any answer of the service (success,
// gone, refused, a rate limit) shows the host is up; only failures with
// no answer, or 5xx, count. ctx is the send's parent context: a send cut
// short by shutdown says nothing of the host.
func (b *breaker) record(ctx context.Context, host string, err error) {
	if ctx.Err() != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !hostFailure(err) {
		delete(b.hosts, host)
		return
	}
	h := b.hosts[host]
	if h == nil {
		h = &hostState{}
		b.hosts[host] = h
	}
	h.fails++
	now := b.now()
	switch {
	case now.Before(h.until):
		// A send begun before the hold: the hold stands.
	case h.hold == 0 && h.fails >= breakerThreshold:
		h.hold, h.until = breakerFirstHold, now.Add(breakerFirstHold)
	case h.hold > 0:
		// The probe after a hold failed: hold again, twice as long.
		h.hold = min(2*h.hold, breakerMaxHold)
		h.until, h.probeUntil = now.Add(h.hold), time.Time{}
	}
}

// hostFailure reports whether err says the service is unreachable or
// failing (as opposed to an answer about this message).
func hostFailure(err error) bool {
	if err == nil || errors.Is(err, channel.ErrGone) || errors.Is(err, channel.ErrPermanent) {
		return false
	}
	var tmp *channel.TemporaryError
	if errors.As(err, &tmp) && tmp.After > 0 {
		return false // a rate limit: the service answered
	}
	return true
}

// chatHost is the destination host of a subscription's chat channel:
// the webhook URL's host for Slack and Discord (a self-hosted
// Slack-compatible chat is its own host), the bot API for Telegram.
func chatHost(sub *store.Subscription, ch string) string {
	raw := ""
	switch ch {
	case store.ChannelSlack:
		raw = sub.SlackURL
	case store.ChannelDiscord:
		raw = sub.DiscordURL
	default:
		return ch
	}
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		return ch + ":" + u.Host
	}
	return ch
}
