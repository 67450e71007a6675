package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ChatDeadLetter is one chat channel's message of a digest that will not
// be tried again unless replayed: the service refused it for good, or it
// failed its every try. The message is kept as rendered input (JSON of
// channel.Message), so a replay needs none of the digest's jobs, which
// may have expired meanwhile.
type ChatDeadLetter struct {
	ID             string    `json:"id"` // the digest id, a dash, the channel
	DigestID       string    `json:"digest_id"`
	SubscriptionID string    `json:"subscription_id"`
	Channel        string    `json:"channel"`
	Reason         string    `json:"reason"`
	Attempts       int       `json:"attempts"`
	DiedAt         time.Time `json:"died_at"`
	Message        string    `json:"-"`
	// Sent is how many messages of a multi-message alert the service had
	// accepted before it died: a replay resumes after them, so that the
	// subscriber does not see those twice.
	Sent int `json:"sent,omitempty"`
}

// ErrNotDeadLetter is returned by ReplayChatDeadLetter for an unknown or
// expired id.
var ErrNotDeadLetter = errors.New("chat dead letter not found")

// ChatDeadLetterID is the id of a digest's dead letter on one channel.
func ChatDeadLetterID(digestID, channel string) string { return digestID + "-" + channel }

// AddChatDeadLetter stores a dead letter for ttl (and lists it).
// Storing one id twice keeps the latest.
func (s *Redis) AddChatDeadLetter(ctx context.Context, dl ChatDeadLetter, ttl time.Duration) error {
	if dl.ID == "" {
		dl.ID = ChatDeadLetterID(dl.DigestID, dl.Channel)
	}
	p := s.rdb.TxPipeline()
	k := s.k.chatDeadLetter(dl.ID)
	p.HSet(ctx, k, "digest", dl.DigestID, "sub", dl.SubscriptionID, "ch", dl.Channel, "reason", dl.Reason,
		"att", dl.Attempts, "died", ms(dl.DiedAt), "msg", dl.Message, "sent", dl.Sent)
	p.PExpire(ctx, k, ttl)
	p.ZAdd(ctx, s.k.chatDead(), redis.Z{Score: float64(ms(dl.DiedAt)), Member: dl.ID})
	// The index forgets what expired: entries older than the TTL.
	p.ZRemRangeByScore(ctx, s.k.chatDead(), "-inf", strconv.FormatInt(ms(dl.DiedAt.Add(-ttl)), 10))
	_, err := p.Exec(ctx)
	return wrap("add chat dead letter", err)
}

// ChatDeadLetters returns up to limit dead letters, newest first.
func (s *Redis) ChatDeadLetters(ctx context.Context, limit int) ([]ChatDeadLetter, error) {
	if limit <= 0 {
		return nil, nil
	}
	ids, err := s.rdb.ZRevRange(ctx, s.k.chatDead(), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, wrap("chat dead letters", err)
	}
	out := make([]ChatDeadLetter, 0, len(ids))
	for _, id := range ids {
		dl, err := s.chatDeadLetter(ctx, id)
		if errors.Is(err, ErrNotDeadLetter) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, dl)
	}
	return out, nil
}

func (s *Redis) chatDeadLetter(ctx context.Context, id string) (ChatDeadLetter, error) {
	h, err := s.rdb.HGetAll(ctx, s.k.chatDeadLetter(id)).Result()
	if err != nil {
		return ChatDeadLetter{}, wrap("chat dead letter", err)
	}
	if h["sub"] == "" {
		return ChatDeadLetter{}, ErrNotDeadLetter
	}
	dl := ChatDeadLetter{ID: id, DigestID: h["digest"], SubscriptionID: h["sub"], Channel: h["ch"], Reason: h["reason"], Message: h["msg"]}
	dl.Attempts, _ = strconv.Atoi(h["att"])
	dl.Sent, _ = strconv.Atoi(h["sent"])
	if n, err := strconv.ParseInt(h["died"], 10, 64); err == nil {
		dl.DiedAt = time.UnixMilli(n).UTC()
	}
	return dl, nil
}

// ReplayChatDeadLetter queues dead letter id to be sent again at once: a
// digest of kind KindReplay in the subscription's outbox that carries
// only that channel's message (every other channel marked done). The
// dead letter is removed once the digest is queued. It returns the new
// digest's id.
func (s *Redis) ReplayChatDeadLetter(ctx context.Context, id string, now time.Time) (string, error) {
	dl, err := s.chatDeadLetter(ctx, id)
	if err != nil {
		return "", err
	}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	// The first replay names its digest in the dead letter (HSETNX), and
	// a second request (a double click, a client retrying a lost answer)
	// gets that same digest: one replay, not two.
	did := dl.ID + "-r" + hex.EncodeToString(suffix)
	if ok, err := s.rdb.HSetNX(ctx, s.k.chatDeadLetter(id), "replay", did).Result(); err != nil {
		return "", wrap("replay chat dead letter", err)
	} else if !ok {
		if did, err = s.rdb.HGet(ctx, s.k.chatDeadLetter(id), "replay").Result(); err != nil {
			return "", wrap("replay chat dead letter", err)
		}
		// Queued by the first request already (which may be sending it):
		// written again only if that request died before writing it.
		if n, err := s.rdb.Exists(ctx, s.k.digest(did)).Result(); err != nil {
			return "", wrap("replay chat dead letter", err)
		} else if n > 0 {
			return did, nil
		}
	}
	fields := []any{"sub", dl.SubscriptionID, "items", "", "dropped", 0, "created", ms(now), "due", ms(now),
		"kind", KindReplay, "msg:" + dl.Channel, dl.Message, "email_done", 1, "webhook_done", 1}
	if dl.Sent > 0 {
		fields = append(fields, dl.Channel+"_sent", dl.Sent)
	}
	for _, ch := range ChatChannels {
		if ch != dl.Channel {
			fields = append(fields, ch+"_done", 1)
		}
	}
	p := s.rdb.TxPipeline()
	p.HSet(ctx, s.k.digest(did), fields...)
	p.ZAdd(ctx, s.k.outboxOf(did), redis.Z{Score: float64(ms(now)), Member: did})
	if _, err := p.Exec(ctx); err != nil {
		return "", wrap("replay chat dead letter", err)
	}
	p = s.rdb.TxPipeline()
	p.Del(ctx, s.k.chatDeadLetter(id))
	p.ZRem(ctx, s.k.chatDead(), id)
	_, err = p.Exec(ctx)
	return did, wrap("replay chat dead letter", err)
}
