package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/grace"
	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/store"
)

// Store is what the digest engine needs from the data model.
type Store interface {
	DueAt(ctx context.Context, now time.Time, limit int64) ([]store.Due, error)
	ClaimDue(ctx context.Context, claims []store.Claim, now time.Time) ([]store.ClaimResult, error)
	LeaseOutbox(ctx context.Context, now, leaseUntil time.Time, limit int) ([]string, error)
	Digest(ctx context.Context, id string) (*store.DigestRecord, error)
	Jobs(ctx context.Context, subID string, seqs []int64) ([]store.JobRecord, error)
	GetSubscription(ctx context.Context, id string) (*store.Subscription, error)
	GetSubscriptions(ctx context.Context, ids []string) ([]*store.Subscription, error)
	MarkDigest(ctx context.Context, id, channel string) error
	RetryDigest(ctx context.Context, id string, at time.Time) (int, error)
	FinishDigest(ctx context.Context, id string) error
	RecordBounce(ctx context.Context, email string, limit int, now time.Time) (bool, error)
	IsSuppressed(ctx context.Context, email string) (bool, error)

	// The chat channels' ledger (store/digest.go), their dead letters
	// (store/chatdead.go) and a gone destination (store/channels.go).
	SetDigestSent(ctx context.Context, id, channel string, n int, msg string) error
	FailDigestChannel(ctx context.Context, id, channel string) (int, error)
	AddChatDeadLetter(ctx context.Context, dl store.ChatDeadLetter, ttl time.Duration) error
	DisableChannel(ctx context.Context, id, ch, reason string, now time.Time) (bool, error)

	// Quiet hours and the daily cap (store/channels.go).
	Postpone(ctx context.Context, d store.Due, at, rollup time.Time) (bool, error)
	AlertsSent(ctx context.Context, ids, days []string) ([]int, error)
}

// Sender sends one email; Mailer is the real one.
type Sender interface {
	Send(ctx context.Context, msg *mail.Msg) error
}

// DigestRenderer turns a digest into an email, and writes the notice
// that a chat channel was turned off; Renderer is the real one.
type DigestRenderer interface {
	Digest(d DigestEmail) (*mail.Msg, error)
	ChannelDisabled(n ChannelDisabledEmail) (*mail.Msg, error)
}

// Webhooks queues a digest for webhook delivery. Enqueue is idempotent by
// delivery id and does nothing for a subscription without an endpoint.
type Webhooks interface {
	EnqueueDigest(ctx context.Context, deliveryID, subID string, jobs []matcher.Job, more int) error
}

// Links makes the per-subscription URLs every email carries.
type Links interface {
	Unsubscribe(subID string) string
	// Manage returns a fresh manage link carrying the subscription's token
	// version, so each email has a link that works for the full manage-link
	// lifetime and that "sign out of all links" can revoke.
	Manage(subID string, tokenVersion int) string
	// Channel and ChannelStop are the links of a chat message: a page
	// about the alert for whoever reads the channel, and its "stop
	// posting here". They show no address and can change nothing else,
	// because a Slack or Discord channel may be shared.
	Channel(subID, ch string) string
	ChannelStop(subID, ch string) string
}

// DigestConfig tunes the digest engine.
type DigestConfig struct {
	Cap         int           // jobs listed per digest; default 25
	Workers     int           // digests sent at once; default 4
	Batch       int           // due subscriptions claimed per round trip; default 500
	Lease       time.Duration // how long a claimed digest is ours; default 2m; a send starts only with half of it left
	Tick        time.Duration // how often the scheduler looks; default 250ms
	RetryBase   time.Duration // first retry delay after a temporary failure; default 5s
	RetryMax    time.Duration // longest retry delay; default 10m
	BounceLimit int           // hard bounces before an address is suppressed; default 1
	// ShutdownTimeout bounds the sends still in progress once Run's
	// context is done; default 10s.
	ShutdownTimeout time.Duration
	// Clock gives the time leases and retry times are set from and
	// checked against, and the instant Run and SendOutbox act at; default
	// the real clock. Tests inject a fake one. Waits (the ticker, the
	// pauses between tries to record a sent email) are real time.
	Clock clock.Clock

	// Chats posts alerts to the chat channels, by channel name
	// (store.ChannelSlack, store.ChannelDiscord, store.ChannelTelegram).
	// A channel without one is not posted to (Telegram without a bot
	// token): a digest does not wait for it.
	Chats map[string]Chat
	// Feed, when set, gets every digest's jobs for subscriptions with
	// the feed channel.
	Feed Feed
	// ChatAttempts is how many temporary failures of one chat channel a
	// digest takes before that channel's message is dead-lettered;
	// default 12 (with the default backoff, 30 minutes to an hour of
	// trying).
	ChatAttempts int
	// ChatDeadLetterTTL is how long a chat dead letter is kept for
	// replay; default 30 days.
	ChatDeadLetterTTL time.Duration
}

func (c DigestConfig) withDefaults() DigestConfig {
	if c.Cap <= 0 {
		c.Cap = 25
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.Tick <= 0 {
		c.Tick = 250 * time.Millisecond
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 5 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 10 * time.Minute
	}
	if c.BounceLimit <= 0 {
		c.BounceLimit = 1
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.ChatAttempts <= 0 {
		c.ChatAttempts = 12
	}
	if c.ChatDeadLetterTTL <= 0 {
		c.ChatDeadLetterTTL = 30 * 24 * time.Hour
	}
	return c
}

// Digester runs the schedule: it claims due digests (each exactly once,
// whatever the number of replicas) and sends them by email and webhook,
// retrying temporary failures from the outbox in Redis.
type Digester struct {
	store    Store
	render   DigestRenderer
	mail     Sender
	webhooks Webhooks // may be nil
	links    Links
	cfg      DigestConfig
	log      *slog.Logger
	metrics  *Metrics
	breaker  *breaker // chat hosts that are failing

	// stopping is set once Run's context is done: no digest is started
	// after it.
	stopping atomic.Bool
}

// NewDigester wires the digest engine. webhooks may be nil.
func NewDigester(st Store, r DigestRenderer, m Sender, w Webhooks, links Links, cfg DigestConfig, log *slog.Logger, metrics *Metrics) *Digester {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Digester{store: st, render: r, mail: m, webhooks: w, links: links, cfg: cfg,
		log: log.With("component", "digester"), metrics: metrics, breaker: newBreaker(cfg.Clock.Now)}
}

// RunResult counts what one run did.
type RunResult struct {
	Sent         int `json:"sent"`          // digests that went out
	SkippedEmpty int `json:"skipped_empty"` // due, but nothing pending (or all closed)
	Deferred     int `json:"deferred"`      // left in the outbox for a later attempt (a temporary failure, or the lease running out)
	// Held counts instant alerts due but held back, by quiet hours or
	// the daily cap; they are due again when those end.
	Held int `json:"held,omitempty"`
}

// RunDue claims and sends every digest due at now, synchronously. The
// scheduler calls it with the configured clock's time; the admin endpoint
// and the tests with the instant they name. The lease always runs from the
// clock's time.
func (d *Digester) RunDue(ctx context.Context, now time.Time) (RunResult, error) {
	var total RunResult
	for {
		due, err := d.store.DueAt(ctx, now, int64(d.cfg.Batch))
		if err != nil {
			return total, err
		}
		if len(due) == 0 {
			return total, nil
		}
		ids := make([]string, len(due))
		for i, du := range due {
			ids[i] = du.SubscriptionID
		}
		subs, err := d.store.GetSubscriptions(ctx, ids)
		if err != nil {
			return total, err
		}
		gates, err := d.gate(ctx, due, subs, now)
		if err != nil {
			return total, err
		}
		claims := make([]store.Claim, 0, len(due))
		leaseUntil := d.cfg.Clock.Now().Add(d.cfg.Lease)
		for i, du := range due {
			g := gates[i]
			if g.held {
				total.Held++
				continue
			}
			c := store.Claim{Due: du, DigestID: store.DigestID(du.SubscriptionID, du.At), LeaseUntil: leaseUntil,
				Kind: g.kind, CountDay: g.countDay, CountUntil: g.countUntil}
			if subs[i] != nil { // a deleted subscription's entry is just dropped
				c.Next = subs[i].Schedule().Next(du.At, now)
			}
			claims = append(claims, c)
		}
		results, err := d.store.ClaimDue(ctx, claims, now)
		if err != nil {
			return total, err
		}
		var digestIDs []string
		for i, r := range results {
			switch r {
			case store.Claimed:
				digestIDs = append(digestIDs, claims[i].DigestID)
			case store.ClaimedEmpty:
				total.SkippedEmpty++
				d.metrics.digest("empty")
			}
		}
		r := d.sendAll(ctx, digestIDs, now, leaseUntil)
		total.Sent += r.Sent
		total.SkippedEmpty += r.SkippedEmpty
		total.Deferred += r.Deferred
		if len(due) < d.cfg.Batch || d.stopping.Load() {
			return total, nil
		}
	}
}

// sendAll sends digests leased until leaseUntil with the configured number
// of workers. A digest is started only while at least half the lease is
// left: once the lease has run out another replica may take the digest
// from the outbox, and both would send it. The ones not started stay in
// the outbox (counted as deferred) for whoever leases them next. Once Run
// is stopping, the digests not started are handed back to the outbox at
// once, so that the next process need not wait for their lease.
func (d *Digester) sendAll(ctx context.Context, ids []string, now, leaseUntil time.Time) RunResult {
	var (
		mu  sync.Mutex
		res RunResult
		wg  sync.WaitGroup
	)
	work := make(chan string)
	for w := 0; w < min(d.cfg.Workers, len(ids)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				o := outcomeDeferred
				switch {
				case d.stopping.Load():
					d.release(ctx, id)
				case leaseUntil.Sub(d.cfg.Clock.Now()) >= d.cfg.Lease/2:
					o = d.send(ctx, id, now, leaseUntil)
				}
				mu.Lock()
				switch o {
				case outcomeSent:
					res.Sent++
				case outcomeEmpty:
					res.SkippedEmpty++
				case outcomeDeferred:
					res.Deferred++
				}
				mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	return res
}

type outcome int

const (
	outcomeSent outcome = iota
	outcomeEmpty
	outcomeDeferred
	outcomeDropped
)

// send delivers one claimed digest to every channel the subscription has:
// email, the webhook queue, each chat channel and the feed. Every
// channel's step is recorded in the digest's ledger right after it, so a
// crash at any point makes the lease run out and another attempt resume
// where this one stopped: a channel marked done is not sent again, the
// webhook queue is idempotent by delivery id, and a chat resumes after
// the messages of a multi-message alert it accepted. A crash between a
// send and its mark can repeat that one send (one email, one chat
// message) and nothing else: the ledger records what the service
// accepted, and the service cannot be asked.
//
// The channels are independent: one failing temporarily (a chat's rate
// limit) is retried with the digest while the others are done, and the
// digest is finished once every channel is.
func (d *Digester) send(ctx context.Context, id string, now, leaseUntil time.Time) outcome {
	log := d.log.With("digest", id)
	rec, err := d.store.Digest(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		_ = d.store.FinishDigest(ctx, id) // a stale outbox entry
		return outcomeDropped
	}
	if err != nil {
		log.Warn("read digest failed; retrying later", "err", err)
		return d.retry(ctx, id, 0)
	}
	sub, err := d.store.GetSubscription(ctx, rec.SubscriptionID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sub.Status != store.StatusActive && sub.Status != store.StatusPaused) {
		log.Info("subscription gone or stopped; digest dropped", "subscription", rec.SubscriptionID)
		d.metrics.digest("dropped")
		return d.finish(ctx, id, outcomeDropped)
	}
	if err != nil {
		log.Warn("read subscription failed; retrying later", "err", err)
		return d.retry(ctx, id, rec.Attempts)
	}
	p := &pass{}
	if rec.Kind == store.KindReplay {
		// A chat dead letter sent again: its message as it died, to its
		// one channel; every other channel is marked done already.
		d.replay(ctx, log, rec, sub, leaseUntil, p)
	} else {
		jobs, more, err := d.jobs(ctx, rec)
		if err != nil {
			log.Warn("read jobs failed; retrying later", "err", err)
			return d.retry(ctx, id, rec.Attempts)
		}
		if len(jobs) == 0 {
			d.metrics.digest("empty")
			return d.finish(ctx, id, outcomeEmpty)
		}
		if !rec.EmailDone && sub.Has(store.ChannelEmail) {
			d.sendEmail(ctx, log, rec, sub, jobs, more, now, p)
		}
		if !rec.WebhookDone && sub.Has(store.ChannelWebhook) && sub.WebhookURL != "" && d.webhooks != nil {
			d.queueWebhook(ctx, log, rec, sub, jobs, more, p)
		}
		msg := d.message(rec, sub, jobs, more)
		for _, ch := range store.ChatChannels {
			if chat := d.cfg.Chats[ch]; chat != nil && sub.Has(ch) && !rec.Done[ch] {
				chMsg := d.chatMessage(msg, sub, ch)
				// Part of it was accepted: resume the message those parts
				// were cut from (SetDigestSent).
				if raw := rec.Messages[ch]; raw != "" {
					var kept channel.Message
					if err := json.Unmarshal([]byte(raw), &kept); err == nil {
						chMsg = kept
					}
				}
				d.sendChat(ctx, log, rec, sub, ch, chat, chMsg, leaseUntil, p)
			}
		}
		if d.cfg.Feed != nil && sub.Has(store.ChannelFeed) && !rec.Done[store.ChannelFeed] {
			d.appendFeed(ctx, log, rec, sub, msg.Jobs, p)
		}
	}
	if p.pending {
		return d.retryAfter(ctx, id, rec.Attempts, p.after)
	}
	o := outcomeSent
	if p.dropped && !p.delivered {
		o = outcomeDropped
	}
	if o == outcomeSent {
		d.metrics.digest("sent")
	} else {
		d.metrics.digest("dropped")
	}
	return d.finish(ctx, id, o)
}

// pass is what one attempt at a digest came to over its channels.
type pass struct {
	pending   bool          // a channel must be tried again: the digest is retried
	after     time.Duration // and not before this (a chat's rate limit)
	delivered bool          // a channel took the digest in this attempt
	dropped   bool          // the email was given up (suppressed, bounced, rejected)
}

// later marks the pass as to be retried, no earlier than after.
func (p *pass) later(after time.Duration) {
	p.pending = true
	p.after = max(p.after, after)
}

// queueWebhook hands the digest to the webhook queue and marks it.
func (d *Digester) queueWebhook(ctx context.Context, log *slog.Logger, rec *store.DigestRecord, sub *store.Subscription, jobs []matcher.Job, more int, p *pass) {
	if err := d.webhooks.EnqueueDigest(ctx, rec.ID, sub.ID, jobs, more); err != nil {
		log.Warn("queue webhook failed; retrying later", "err", err)
		p.later(0)
		return
	}
	if err := d.store.MarkDigest(ctx, rec.ID, store.ChannelWebhook); err != nil {
		p.later(0) // queued again on the retry: the queue is idempotent
		return
	}
	p.delivered = true
}

// sendEmail sends the digest's email and marks it. An email given up (a
// hard bounce, a suppressed address, a message rejected) is marked done
// and counted as dropped; a temporary failure leaves the pass pending.
func (d *Digester) sendEmail(ctx context.Context, log *slog.Logger, rec *store.DigestRecord, sub *store.Subscription, jobs []matcher.Job, more int, now time.Time, p *pass) {
	suppressed, err := d.store.IsSuppressed(ctx, sub.Email)
	if err != nil {
		p.later(0)
		return
	}
	if suppressed {
		log.Info("address suppressed; email skipped")
		p.dropped = true
		return
	}
	msg, err := d.render.Digest(DigestEmail{
		ID: rec.ID, SubscriptionID: sub.ID, To: sub.Email, Frequency: sub.Frequency, Filter: sub.Filter,
		Jobs: jobs, More: more, UnsubscribeURL: d.links.Unsubscribe(sub.ID), ManageURL: d.links.Manage(sub.ID, sub.TokenVersion),
		MoreURL: d.links.Manage(sub.ID, sub.TokenVersion), Rollup: rec.Kind == store.KindRollup,
	})
	if err != nil {
		log.Error("render digest failed; retrying later", "err", err)
		p.later(0)
		return
	}
	err = d.mail.Send(ctx, msg)
	d.metrics.CountEmail(emailKind(sub.Frequency), err)
	dropped := false
	var perm *PermanentError
	switch {
	case err == nil:
	case errors.As(err, &perm) && perm.Stage != "rcpt":
		// A 5xx to DATA is about this message (content, policy), not the
		// address: give the message up, do not count a bounce.
		dropped = true
		log.Warn("message rejected permanently; not retried", "subscription", sub.ID, "err", err)
	case errors.As(err, &perm):
		dropped = true
		stopped, berr := d.store.RecordBounce(ctx, sub.Email, d.cfg.BounceLimit, now)
		if berr != nil {
			p.later(0)
			return
		}
		log.Warn("hard bounce", "subscription", sub.ID, "err", err, "suppressed", stopped)
	default:
		log.Warn("email failed; retrying later", "err", err, "attempt", rec.Attempts+1)
		p.later(0)
		return
	}
	if err := d.markEmailDone(ctx, rec.ID); err != nil {
		log.Error("mark email sent failed; the email may be sent again", "err", err)
		p.later(0)
		return
	}
	if dropped {
		p.dropped = true
	} else {
		p.delivered = true
	}
}

// markEmailDone records that a digest's email went out. The email is
// already delivered: giving up here would send it again, so a failure
// (Redis restarting, failing over) is retried for up to a quarter of the
// lease, well within the time the digest is ours. That bound and the
// pauses between tries are real time: they wait for Redis, not for the
// schedule.
func (d *Digester) markEmailDone(ctx context.Context, id string) error {
	return d.persist(ctx, id, "mark email sent", func() error { return d.store.MarkDigest(ctx, id, store.ChannelEmail) })
}

// persist runs a write of digest id's state until it succeeds, for up to
// a quarter of the lease in real time, with pauses from 50 ms to 2 s: a
// Redis failover (a few seconds) does not leave the digest to its lease.
func (d *Digester) persist(ctx context.Context, id, what string, write func() error) error {
	deadline := time.Now().Add(d.cfg.Lease / 4)
	delay := 50 * time.Millisecond
	for {
		err := write()
		if err == nil || ctx.Err() != nil || time.Now().Add(delay).After(deadline) {
			return err
		}
		d.log.Warn(what+" failed; retrying", "digest", id, "err", err, "in", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// jobs reads the digest's jobs with their newest data, leaves out closed and
// expired ones, and applies the cap.
func (d *Digester) jobs(ctx context.Context, rec *store.DigestRecord) ([]matcher.Job, int, error) {
	recs, err := d.store.Jobs(ctx, rec.SubscriptionID, rec.Seqs)
	if err != nil {
		return nil, 0, err
	}
	var jobs []matcher.Job
	more := rec.Dropped
	for _, r := range recs {
		if r.Closed {
			continue
		}
		if len(jobs) >= d.cfg.Cap {
			more++
			continue
		}
		var j matcher.Job
		if err := json.Unmarshal(r.Data, &j); err != nil {
			d.log.Error("stored job unreadable; left out", "seq", r.Seq, "err", err)
			continue
		}
		jobs = append(jobs, j)
	}
	return jobs, more, nil
}

func (d *Digester) retry(ctx context.Context, id string, attempts int) outcome {
	return d.retryAfter(ctx, id, attempts, 0)
}

// retryAfter puts the digest back in the outbox after the backoff for
// its attempts, and no earlier than after (a chat's rate limit asking for
// a longer wait).
func (d *Digester) retryAfter(ctx context.Context, id string, attempts int, after time.Duration) outcome {
	d.metrics.digest("deferred")
	delay := d.cfg.RetryBase << min(attempts, 20)
	if delay > d.cfg.RetryMax || delay <= 0 {
		delay = d.cfg.RetryMax
	}
	delay = delay/2 + rand.N(delay/2+1) // jitter: half to the whole delay
	delay = max(delay, after)
	// A failure here is most likely the Redis outage that made the send
	// fail: retried (persist), so that a failover does not leave the
	// digest to its 2-minute lease while this process lives.
	at := d.cfg.Clock.Now().Add(delay)
	if err := d.persist(ctx, id, "reschedule digest", func() error {
		_, err := d.store.RetryDigest(ctx, id, at)
		return err
	}); err != nil {
		d.log.Error("reschedule digest failed; its lease will run out and it is retried then", "digest", id, "err", err)
	}
	return outcomeDeferred
}

// release hands a leased digest that was not started back to the outbox,
// due now. It goes through RetryDigest, so it counts as one attempt.
func (d *Digester) release(ctx context.Context, id string) {
	if _, err := d.store.RetryDigest(ctx, id, d.cfg.Clock.Now()); err != nil {
		d.log.Warn("hand digest back failed; it is sent when its lease runs out", "digest", id, "err", err)
	}
}

func (d *Digester) finish(ctx context.Context, id string, o outcome) outcome {
	// Retried like email_done (persist): a digest left unfinished stays
	// leased, and is looked at again only when its 2-minute lease runs out.
	if err := d.persist(ctx, id, "finish digest", func() error { return d.store.FinishDigest(ctx, id) }); err != nil {
		d.log.Warn("finish digest failed; it may be looked at again", "digest", id, "err", err)
	}
	return o
}

// SendOutbox sends the digests whose retry time or lease has come by the
// configured clock.
func (d *Digester) SendOutbox(ctx context.Context) RunResult {
	now := d.cfg.Clock.Now()
	leaseUntil := now.Add(d.cfg.Lease)
	ids, err := d.store.LeaseOutbox(ctx, now, leaseUntil, d.cfg.Batch)
	if err != nil {
		d.log.Warn("lease outbox failed", "err", err)
		return RunResult{}
	}
	return d.sendAll(ctx, ids, now, leaseUntil)
}

// Run is the scheduler: every tick (real time) it runs what is due at the
// configured clock's time and retries the outbox, until ctx is done. Then it starts no more
// digests, hands the claimed ones not started back to the outbox, and lets
// the sends in progress finish within ShutdownTimeout: a send cut short
// after its data went out would be sent again by the next process.
func (d *Digester) Run(ctx context.Context) error {
	work, release := grace.Period(ctx, d.cfg.ShutdownTimeout, func() { d.stopping.Store(true) })
	defer release()
	t := time.NewTicker(d.cfg.Tick)
	defer t.Stop()
	for {
		if _, err := d.RunDue(work, d.cfg.Clock.Now()); err != nil && ctx.Err() == nil {
			d.log.Warn("scheduler run failed", "err", err)
		}
		if ctx.Err() == nil {
			d.SendOutbox(work)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
