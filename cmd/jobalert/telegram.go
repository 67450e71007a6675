package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/telegram"
	"github.com/jobalert/jobalert/internal/redact"
	"github.com/jobalert/jobalert/store"
)

// telegramBinder binds and unbinds chats in the subscription model, for
// the poller's /start and /stop.
type telegramBinder struct {
	s   *store.Redis
	now func() time.Time
}

func (b telegramBinder) Bind(ctx context.Context, subID string, chat int64) error {
	err := b.s.BindTelegram(ctx, subID, chat, b.now())
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrTelegramNotChosen) {
		return fmt.Errorf("%w: %v", telegram.ErrUnknownStart, err)
	}
	return err
}

func (b telegramBinder) Unbind(ctx context.Context, chat int64) error {
	_, err := b.s.UnbindTelegram(ctx, chat, b.now())
	return err
}

// telegramLinks makes the https://t.me/<bot>?start=<token> links the API
// shows when a subscriber chooses Telegram. The bot's username comes from
// getMe, asked at start and again until it answers (Run), so that serve
// starts while the Bot API is unreachable; until then a link cannot be
// made and StartLink says so.
type telegramLinks struct {
	bot    *telegram.Bot
	starts *telegram.Starts
	log    *slog.Logger
	sleep  channel.Sleep

	mu       sync.Mutex
	username string
}

// errTelegramUnavailable is StartLink's error while the bot's username is
// not known: the Bot API has not answered getMe yet.
var errTelegramUnavailable = errors.New("telegram: the bot is not reachable yet (getMe has not answered); try again in a minute")

// usernameBackoff bounds the waits between getMe tries.
const (
	usernameBackoffMin = time.Second
	usernameBackoffMax = time.Minute
)

// Run asks getMe for the bot's username until it has it or ctx is done,
// backing off from usernameBackoffMin to usernameBackoffMax.
func (l *telegramLinks) Run(ctx context.Context) error {
	wait := usernameBackoffMin
	for ctx.Err() == nil {
		if _, err := l.name(ctx); err == nil {
			return nil
		} else if ctx.Err() == nil {
			l.log.Warn("telegram: getMe failed; Telegram start links are unavailable until it answers", "err", redact.Error(err), "retry_in", wait)
		}
		if l.sleep(ctx, wait) != nil {
			return nil
		}
		wait = min(2*wait, usernameBackoffMax)
	}
	return nil
}

// name returns the bot's username, asking getMe when it is not known.
func (l *telegramLinks) name(ctx context.Context) (string, error) {
	l.mu.Lock()
	u := l.username
	l.mu.Unlock()
	if u != "" {
		return u, nil
	}
	u, err := l.bot.Username(ctx)
	if err != nil {
		return "", err
	}
	if u == "" {
		return "", errors.New("telegram: getMe answered without a username")
	}
	l.mu.Lock()
	l.username = u
	l.mu.Unlock()
	l.log.Info("telegram bot ready", "username", u)
	return u, nil
}

// StartLink issues a one-time start token for subscription subID and
// returns the link that binds the chat that opens it.
func (l *telegramLinks) StartLink(ctx context.Context, subID string) (string, error) {
	l.mu.Lock()
	u := l.username
	l.mu.Unlock()
	if u == "" {
		// One try now (bounded), so that the first sign-up after a start
		// with Telegram briefly down need not wait for Run's next round.
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := l.name(tctx)
		cancel()
		if err != nil {
			return "", errTelegramUnavailable
		}
		l.mu.Lock()
		u = l.username
		l.mu.Unlock()
	}
	tok, err := l.starts.Issue(ctx, subID)
	if err != nil {
		return "", err
	}
	return telegram.StartLink(u, tok), nil
}
