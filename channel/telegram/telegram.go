// Package telegram delivers alerts to Telegram chats through a bot and
// binds chats to subscriptions.
//
// Sending goes through github.com/go-telegram/bot: messages with
// parse_mode=HTML of at most 4,096 characters, split between jobs
// (Render); a 429 is retried after its parameters.retry_after, bounded; a
// 403 (the user blocked the bot) and "chat not found" are channel.ErrGone.
//
// Binding: the manage page (a later phase) asks Starts for a one-time
// token and shows https://t.me/<bot>?start=<token>; the Poller reads the
// bot's updates by long polling, one reader across replicas (a lease in
// Redis), with the offset in Redis so a restart does not replay, and on
// "/start <token>" calls Binder.Bind and confirms in the chat; "/stop"
// calls Binder.Unbind. The bot token is a Token, which never prints.
package telegram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/internal/redact"
)

// DefaultAPIURL is Telegram's Bot API.
const DefaultAPIURL = "https://api.telegram.org"

// Token is a bot token (JOBALERT_TELEGRAM_BOT_TOKEN). It prints, logs and
// marshals as redact.Secret's "******** (set)", so no code path shows it.
type Token string

func (t Token) String() string { return redact.Secret(string(t)) }

// LogValue implements slog.LogValuer.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON implements json.Marshaler.
func (t Token) MarshalJSON() ([]byte, error) { return []byte(`"` + t.String() + `"`), nil }

// Options configures a Bot.
type Options struct {
	Token Token
	// APIURL is the Bot API's base URL (JOBALERT_TELEGRAM_API_URL); empty
	// means DefaultAPIURL.
	APIURL string
	// PollTimeout is getUpdates' long-poll timeout; 0 means 25 s.
	PollTimeout time.Duration
	// MaxWait is the longest retry_after a send sits out itself; a longer
	// one is returned as a *channel.TemporaryError. 0 means 1 minute.
	MaxWait time.Duration
	// Attempts bounds the tries of one message; 0 means 4.
	Attempts int
	// Sleep waits between tries; nil means channel.RealSleep.
	Sleep channel.Sleep
	// Logger receives the client library's errors; nil discards them.
	Logger *slog.Logger
}

// Bot is a Telegram bot: it sends messages and reads updates. It is safe
// for concurrent use.
type Bot struct {
	b        *bot.Bot
	token    Token
	apiURL   string
	http     *http.Client
	poll     time.Duration
	maxWait  time.Duration
	attempts int
	sleep    channel.Sleep
}

// New returns a Bot. It makes no request: a bad token shows at the first
// call.
func New(o Options) (*Bot, error) {
	if strings.TrimSpace(string(o.Token)) == "" {
		return nil, errors.New("telegram: the bot token is empty")
	}
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	if !strings.HasPrefix(o.APIURL, "https://") && !strings.HasPrefix(o.APIURL, "http://") {
		return nil, fmt.Errorf("telegram: API URL %q is not an absolute http(s) URL", redact.Host(o.APIURL))
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 25 * time.Second
	}
	if o.MaxWait <= 0 {
		o.MaxWait = time.Minute
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Sleep == nil {
		o.Sleep = channel.RealSleep
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{Timeout: o.PollTimeout + 15*time.Second}
	b, err := bot.New(string(o.Token),
		bot.WithServerURL(strings.TrimSuffix(o.APIURL, "/")),
		bot.WithSkipGetMe(),
		bot.WithHTTPClient(o.PollTimeout, hc),
		bot.WithErrorsHandler(func(err error) {
			logger.Warn("telegram client", "err", redact.Error(scrub(err, o.Token)))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", scrub(err, o.Token))
	}
	return &Bot{b: b, token: o.Token, apiURL: strings.TrimSuffix(o.APIURL, "/"), http: hc,
		poll: o.PollTimeout, maxWait: o.MaxWait, attempts: o.Attempts, sleep: o.Sleep}, nil
}

// Username returns the bot's @username (without the @) from getMe, for
// the t.me link.
func (b *Bot) Username(ctx context.Context) (string, error) {
	u, err := b.b.GetMe(ctx)
	if err != nil {
		return "", fmt.Errorf("telegram: getMe: %w", b.classify(err))
	}
	return u.Username, nil
}

// StartLink is the link that opens a chat with the bot and sends
// "/start <token>".
func StartLink(botUsername, token string) string {
	return "https://t.me/" + botUsername + "?start=" + token
}

// Send sends the texts (from Render) to chatID in order and returns how
// many were accepted, so that a retry resumes after them. A 429 is
// retried after parameters.retry_after within MaxWait and Attempts; 403
// and "chat not found" are channel.ErrGone; other 4xx
// channel.ErrPermanent; the rest a *channel.TemporaryError.
func (b *Bot) Send(ctx context.Context, chatID int64, texts []string) (sent int, err error) {
	for _, t := range texts {
		if err := b.send(ctx, chatID, t); err != nil {
			return sent, fmt.Errorf("telegram: sendMessage: %w", err)
		}
		sent++
	}
	return sent, nil
}

func (b *Bot) send(ctx context.Context, chatID int64, text string) error {
	off := true
	for try := 1; ; try++ {
		_, err := b.b.SendMessage(ctx, &bot.SendMessageParams{
			ChatID: chatID, Text: text, ParseMode: models.ParseModeHTML,
			LinkPreviewOptions: &models.LinkPreviewOptions{IsDisabled: &off},
		})
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		err = b.classify(err)
		var temp *channel.TemporaryError
		if !errors.As(err, &temp) || temp.After <= 0 {
			return err
		}
		if temp.After > b.maxWait || try >= b.attempts {
			return err
		}
		if err := b.sleep(ctx, temp.After); err != nil {
			return err
		}
	}
}

// reply sends a plain confirmation to a chat (no retries beyond one
// rate-limit wait: the person is waiting for it).
func (b *Bot) reply(ctx context.Context, chatID int64, text string) error {
	return b.send(ctx, chatID, text)
}

// classify maps the client library's errors to the channel outcomes,
// with the token scrubbed from any text.
func (b *Bot) classify(err error) error {
	err = scrub(err, b.token)
	var tm *bot.TooManyRequestsError
	switch {
	case errors.As(err, &tm):
		d := time.Duration(tm.RetryAfter) * time.Second
		if d <= 0 {
			d = time.Second
		}
		return &channel.TemporaryError{After: d, Err: err}
	case errors.Is(err, bot.ErrorForbidden):
		return fmt.Errorf("%w: %w", channel.ErrGone, err)
	case errors.Is(err, bot.ErrorBadRequest) && strings.Contains(strings.ToLower(err.Error()), "chat not found"):
		return fmt.Errorf("%w: %w", channel.ErrGone, err)
	case errors.Is(err, bot.ErrorBadRequest), errors.Is(err, bot.ErrorNotFound):
		return fmt.Errorf("%w: %w", channel.ErrPermanent, err)
	}
	// A 401 (a wrong bot token) is the operator's to fix, not the
	// subscriber's: temporary, so nothing is dead-lettered meanwhile.
	return &channel.TemporaryError{Err: err}
}

// scrub returns err with every occurrence of the token in its text
// replaced by "***" (the client library puts the token in request URLs),
// unwrapping to err.
func scrub(err error, tok Token) error {
	if err == nil || tok == "" || !strings.Contains(err.Error(), string(tok)) {
		return err
	}
	return &scrubbed{err: err, tok: string(tok)}
}

type scrubbed struct {
	err error
	tok string
}

func (e *scrubbed) Error() string { return strings.ReplaceAll(e.err.Error(), e.tok, "***") }
func (e *scrubbed) Unwrap() error { return e.err }
