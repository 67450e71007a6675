package telegram

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-telegram/bot/models"
	"github.com/redis/go-redis/v9"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/internal/redact"
)

// Binder is what the poller changes when a chat starts or stops alerts;
// the subscription model implements it (a later phase).
type Binder interface {
	// Bind makes chatID the Telegram destination of subscription subID;
	// an error wrapping ErrUnknownStart says the link no longer applies
	// (the subscription is gone or no longer has Telegram).
	Bind(ctx context.Context, subID string, chatID int64) error
	// Unbind removes chatID from whatever subscription it is bound to;
	// a chat bound to nothing is not an error.
	Unbind(ctx context.Context, chatID int64) error
}

// PollerOptions configures a Poller.
type PollerOptions struct {
	// Owner names this replica in the lease; empty means a random id.
	Owner string
	// LeaseTTL is how long the lease outlives a silent holder; 0 means
	// one minute. It must be longer than the bot's PollTimeout.
	LeaseTTL time.Duration
	// Idle is the wait between tries to take the lease, and after an
	// error; 0 means LeaseTTL/4.
	Idle time.Duration
	// Sleep waits; nil means channel.RealSleep.
	Sleep  channel.Sleep
	Logger *slog.Logger
}

// Poller reads the bot's updates by long polling and answers /start and
// /stop. Run it on every replica: a lease in Redis lets one read at a
// time, and each update is claimed in Redis (under the lease) before it
// is handled, so two replicas never both handle one, and a restart goes
// on after the last claimed update. An update claimed by a replica that
// crashes before handling it is lost; the person sends the link again.
type Poller struct {
	bot    *Bot
	starts *Starts
	binder Binder
	lease  *lease
	idle   time.Duration
	sleep  channel.Sleep
	log    *slog.Logger
}

// NewPoller returns a Poller for b, with its offset and lease under keys.
func NewPoller(b *Bot, rdb redis.UniversalClient, keys Keys, starts *Starts, binder Binder, o PollerOptions) (*Poller, error) {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = time.Minute
	}
	if o.LeaseTTL <= b.poll {
		return nil, fmt.Errorf("telegram: lease TTL %s must be longer than the poll timeout %s", o.LeaseTTL, b.poll)
	}
	if o.Idle <= 0 {
		o.Idle = o.LeaseTTL / 4
	}
	if o.Sleep == nil {
		o.Sleep = channel.RealSleep
	}
	if o.Owner == "" {
		r := make([]byte, 8)
		_, _ = rand.Read(r) // crypto/rand.Read never fails
		o.Owner = hex.EncodeToString(r)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Poller{bot: b, starts: starts, binder: binder,
		lease: &lease{rdb: rdb, keys: keys, owner: o.Owner, ttl: o.LeaseTTL},
		idle:  o.Idle, sleep: o.Sleep, log: o.Logger.With("component", "telegram-poller", "owner", o.Owner)}, nil
}

// Run polls until ctx is done, then gives the lease up and returns nil.
func (p *Poller) Run(ctx context.Context) error {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := p.lease.release(rctx); err != nil {
			p.log.Warn("release lease", "err", err)
		}
	}()
	for ctx.Err() == nil {
		if err := p.Step(ctx); err != nil && ctx.Err() == nil {
			if !errors.Is(err, errNotHolder) {
				p.log.Warn("poll", "err", redact.Error(err))
			}
			wait := p.idle
			var temp *channel.TemporaryError
			if errors.As(err, &temp) && temp.After > wait {
				wait = temp.After // getUpdates answered 429
			}
			if p.sleep(ctx, wait) != nil {
				break
			}
		}
	}
	return nil
}

var errNotHolder = errors.New("telegram: another replica holds the poller lease")

// Step is one round of Run: take or renew the lease, read the updates
// after the stored offset (waiting up to the poll timeout), and handle
// each that this replica claims.
func (p *Poller) Step(ctx context.Context) error {
	held, err := p.lease.renew(ctx)
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if !held {
		return errNotHolder
	}
	off, err := p.lease.offset(ctx)
	if err != nil {
		return fmt.Errorf("read offset: %w", err)
	}
	updates, err := p.bot.getUpdates(ctx, off+1)
	if err != nil {
		return err
	}
	for _, u := range updates {
		ok, err := p.lease.claim(ctx, u.ID)
		if err != nil {
			return fmt.Errorf("claim update %d: %w", u.ID, err)
		}
		if ok {
			p.handle(ctx, u)
		}
	}
	return nil
}

// Replies the bot sends.
const (
	replyBound   = "✅ Done: your job alert now arrives in this chat. Send /stop to stop it."
	replyExpired = "This link has expired or was already used. Open your job alert's manage page and choose Telegram again for a new link."
	replyHello   = "Hi! To get job alerts here, choose Telegram on your job alert's manage page and open the link it shows."
	replyStopped = "Stopped: this chat gets no more job alerts. Your alert itself is unchanged; manage it from the link in any alert email."
	replyFailed  = "Sorry, something went wrong on our side. Please open the link again in a minute."
)

func (p *Poller) handle(ctx context.Context, u *models.Update) {
	m := u.Message
	if m == nil || m.Text == "" {
		return
	}
	cmd, arg, _ := strings.Cut(strings.TrimSpace(m.Text), " ")
	cmd, _, _ = strings.Cut(cmd, "@") // /start@jobalert_bot in groups
	arg = strings.TrimSpace(arg)
	chat := m.Chat.ID
	var reply string
	switch cmd {
	case "/start":
		reply = p.start(ctx, chat, arg)
	case "/stop":
		reply = replyStopped
		if err := p.binder.Unbind(ctx, chat); err != nil {
			p.log.Error("unbind", "update", u.ID, "err", redact.Error(err))
			reply = replyFailed
		}
	default:
		if !strings.HasPrefix(cmd, "/") {
			return // not a command: say nothing
		}
		reply = replyHello
	}
	if err := p.bot.reply(ctx, chat, reply); err != nil {
		p.log.Warn("reply", "update", u.ID, "err", redact.Error(err))
	}
}

func (p *Poller) start(ctx context.Context, chat int64, token string) string {
	if token == "" {
		return replyHello
	}
	sub, err := p.starts.Redeem(ctx, token)
	if errors.Is(err, ErrUnknownStart) {
		return replyExpired
	}
	if err != nil {
		p.log.Error("redeem start token", "token", redact.Token(token), "err", redact.Error(err))
		return replyFailed
	}
	if err := p.binder.Bind(ctx, sub, chat); err != nil {
		if errors.Is(err, ErrUnknownStart) {
			// The subscription is gone, or no longer wants Telegram:
			// the link is spent, not worth another try.
			return replyExpired
		}
		p.log.Error("bind", "subscription", sub, "err", redact.Error(err))
		// Give the token back, so the same link works once more.
		if err := p.starts.rdb.Set(ctx, p.starts.keys.Start(token), sub, p.starts.ttl).Err(); err != nil {
			p.log.Error("restore start token", "err", redact.Error(err))
		}
		return replyFailed
	}
	return replyBound
}

// apiAnswer is the Bot API's envelope.
type apiAnswer struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// getUpdates long-polls for the updates from offset on. The client
// library's own polling loop (bot.Start) keeps its offset in memory and
// confirms a batch to Telegram before its handlers have run, which would
// defeat both the stored offset and the one-reader lease; so the call is
// made here, decoded into the library's models.
func (b *Bot) getUpdates(ctx context.Context, offset int64) ([]*models.Update, error) {
	body, _ := json.Marshal(map[string]any{
		"offset": offset, "timeout": int(b.poll / time.Second), "allowed_updates": []string{"message"},
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.apiURL+"/bot"+string(b.token)+"/getUpdates", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("telegram: getUpdates: %w", scrub(err, b.token))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("telegram: getUpdates: %w", scrub(err, b.token))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("telegram: getUpdates: %w", err)
	}
	var a apiAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("telegram: getUpdates: HTTP %d, undecodable answer: %w", resp.StatusCode, err)
	}
	if !a.OK {
		err := fmt.Errorf("telegram: getUpdates: %d %s", a.ErrorCode, channel.Truncate(a.Description, 200))
		if a.Parameters.RetryAfter > 0 {
			return nil, &channel.TemporaryError{After: time.Duration(a.Parameters.RetryAfter) * time.Second, Err: err}
		}
		return nil, err
	}
	var ups []*models.Update
	if err := json.Unmarshal(a.Result, &ups); err != nil {
		return nil, fmt.Errorf("telegram: getUpdates: decode updates: %w", err)
	}
	return ups, nil
}
