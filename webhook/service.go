// Package webhook delivers matched jobs to subscribers' own HTTP endpoints
// as Standard Webhooks calls: signed with a per-subscription secret, retried
// on a schedule kept in Redis (so it survives restarts and is shared by
// replicas), isolated per destination host, subscription and URL
// (concurrency limits, and a circuit breaker that slow answers trip too),
// and guarded against SSRF at dial time. It owns the Redis keys under
// "<prefix>{wh}", one hash tag, so one Redis Cluster slot (docs/webhooks.md,
// "Redis keys").
package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/internal/liveness"
	"github.com/jobalert/jobalert/matcher"
	"github.com/redis/go-redis/v9"
)

// Limits of the external contract.
const (
	MaxBodyBytes     = 256 << 10      // largest request body sent
	MaxResponseBytes = 64 << 10       // most of a response body read
	RotationOverlap  = 24 * time.Hour // how long a rotated-out secret keeps signing
	MinRetryAfter    = time.Second    // Retry-After is clamped to [MinRetryAfter, MaxRetryAfter]
	MaxRetryAfter    = 24 * time.Hour
	maxIDLength      = 256
)

// DefaultSchedule returns the delay before each attempt: the first at
// once, then about 5s, 5m, 30m, 2h, 5h, 10h and 10h after the previous
// failure. It is a fresh slice each call, so no caller can change another's.
func DefaultSchedule() []time.Duration {
	return []time.Duration{
		0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
	}
}

// Errors returned by Service methods.
var (
	ErrNoEndpoint        = errors.New("subscription has no webhook endpoint")
	ErrEndpointDisabled  = errors.New("webhook endpoint is disabled")
	ErrNotFound          = errors.New("webhook delivery not found")
	ErrNotDeadLetter     = errors.New("webhook delivery is not a dead letter")
	ErrInvalidDelivery   = errors.New("invalid webhook delivery")
	errRedisScriptResult = errors.New("unexpected script result")
)

// Clock is the service's source of time for the retry schedule, the
// webhook-timestamp header and the circuit breaker. Tests inject a fake one
// (clock.Fake); time-outs of network calls always use real time.
type Clock = clock.Clock

// Config tunes a Service. Zero fields take the documented defaults.
type Config struct {
	// AllowPrivate permits http URLs and private, loopback and link-local
	// targets (JOBALERT_WEBHOOK_ALLOW_PRIVATE); for development only.
	AllowPrivate bool
	// Workers is the size of the global pool of concurrent attempts
	// (default 16).
	Workers int
	// PerEndpoint is the most concurrent attempts to one endpoint URL,
	// across all replicas (default 2).
	PerEndpoint int
	// PerHost is the most concurrent attempts to one destination host (the
	// URL's host name, lower-cased, and port), across all replicas
	// (default Workers/4, at least 2). It caps the share of the workers
	// that endpoints on one host can hold, however many URLs they use.
	PerHost int
	// PerSubscription is the most concurrent attempts for one
	// subscription, across all replicas (default 2).
	//
	// A due delivery whose URL, host or subscription is at its limit is
	// not attempted: it is put back in the queue for Timeout/15 to
	// 2*Timeout/15 (1-2s at the default timeout) without counting as an
	// attempt, and the worker takes other deliveries.
	PerSubscription int
	// Timeout bounds one attempt: connect, send, response headers and the
	// first MaxResponseBytes of the body (default 15s).
	Timeout time.Duration
	// Schedule[i] is the delay before attempt i+1 (default DefaultSchedule);
	// its length is the number of attempts before a dead letter.
	Schedule []time.Duration
	// Jitter spreads each scheduled delay uniformly by ±Jitter of itself
	// (default 0.2); negative disables it.
	Jitter float64
	// BreakerThreshold is how many consecutive failed attempts to one
	// endpoint open its circuit breaker (default 5); BreakerCooldown is for
	// how long its deliveries are then postponed without attempts
	// (default 1m).
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// SlowAfter: a 2xx answer that took longer than this is delivered,
	// but counts toward the circuit breaker like a failed attempt, so an
	// endpoint that is consistently slow is backed off too (default
	// Timeout/2; negative disables).
	SlowAfter time.Duration
	// Lease is how long a claimed delivery is reserved for its claimer
	// before another worker may take it over (default 2*Timeout + 15s,
	// at least Timeout + 5s).
	Lease time.Duration
	// Liveness, if set, is this process's liveness (internal/liveness):
	// each claim records its owner id, and Run hands back at once the
	// deliveries claimed by processes that stopped beating, and those of
	// an earlier boot of this instance, instead of waiting for their
	// lease. Without it only the lease brings them back. The caller runs
	// it (Liveness.Run); Run beats once before its first claim.
	Liveness *liveness.Liveness
	// RecoverInterval is how often Run looks for deliveries held by dead
	// owners (default 2s; with Liveness only).
	RecoverInterval time.Duration
	// WaitReplicas is how many replicas Enqueue and each claim WAIT for,
	// so that a primary's death loses neither (JOBALERT_REDIS_WAIT_REPLICAS):
	// 0 none (the zero value), -1 one when the primary of the webhook keys
	// has a replica connected (counted again every 10 s), n > 0 that many.
	WaitReplicas int
	// PollInterval is how often workers look for due deliveries besides
	// being woken by a local Enqueue (default 1s).
	PollInterval time.Duration
	// DeadLetterTTL is how long dead letters are kept (default 30 days);
	// DoneTTL how long a delivered id is remembered so that enqueueing it
	// again is a no-op (default 7 days).
	DeadLetterTTL time.Duration
	DoneTTL       time.Duration
	// Clock defaults to the real clock.
	Clock Clock
	// UserAgent defaults to "jobalert/<module version>".
	UserAgent string
	// OnGone is called once when an endpoint answers 410 Gone and is
	// disabled, e.g. to tell the owner by email. It runs on a delivery
	// worker, so it should not block for long.
	OnGone func(ctx context.Context, subscriptionID, url string)
	// Resolver resolves endpoint hostnames (default net.DefaultResolver).
	Resolver *net.Resolver
	// TLSClientConfig, if set, is used for https endpoints (e.g. a private
	// CA); by default the system roots are trusted.
	TLSClientConfig *tls.Config
	// Metrics, if set, counts attempts and dead letters.
	Metrics *Metrics
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 16
	}
	if c.PerEndpoint <= 0 {
		c.PerEndpoint = 2
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Second
	}
	if c.PerHost <= 0 {
		c.PerHost = max(2, c.Workers/4)
	}
	if c.PerSubscription <= 0 {
		c.PerSubscription = 2
	}
	if c.SlowAfter == 0 {
		c.SlowAfter = c.Timeout / 2
	}
	if len(c.Schedule) == 0 {
		c.Schedule = DefaultSchedule()
	}
	c.Schedule = append([]time.Duration(nil), c.Schedule...)
	if c.Jitter == 0 {
		c.Jitter = 0.2
	}
	if c.Jitter < 0 {
		c.Jitter = 0
	}
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = 5
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = time.Minute
	}
	if c.Lease <= 0 {
		c.Lease = 2*c.Timeout + 15*time.Second
	}
	// A lease shorter than an attempt would let a second worker send the
	// same delivery while the first is still waiting for an answer.
	c.Lease = max(c.Lease, c.Timeout+5*time.Second)
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.RecoverInterval <= 0 {
		c.RecoverInterval = 2 * time.Second
	}
	if c.DeadLetterTTL <= 0 {
		c.DeadLetterTTL = 30 * 24 * time.Hour
	}
	if c.DoneTTL <= 0 {
		c.DoneTTL = 7 * 24 * time.Hour
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.UserAgent == "" {
		c.UserAgent = "jobalert/" + moduleVersion()
	}
	return c
}

func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Service stores webhook endpoints and delivers to them. Its methods are
// safe for concurrent use; any number of Services (replicas) may share one
// Redis and prefix.
type Service struct {
	rdb    redis.UniversalClient
	prefix string
	cfg    Config
	log    *slog.Logger
	client *http.Client
	wake   chan struct{}

	// deadMu guards deadSince: when each owner was first seen not beating
	// (recoverOrphans).
	deadMu    sync.Mutex
	deadSince map[string]time.Time

	replicas replicas // the automatic WaitReplicas decision
}

// New returns a Service keeping its state in rdb under prefix+"{wh}".
// A nil logger discards logs.
func New(rdb redis.UniversalClient, prefix string, cfg Config, logger *slog.Logger) *Service {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		Proxy:                  nil, // a proxy would dial for us, past the SSRF guard
		DialContext:            Dialer(cfg.AllowPrivate, cfg.Resolver).DialContext,
		TLSClientConfig:        cfg.TLSClientConfig,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    max(cfg.PerEndpoint, cfg.PerHost),
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &Service{
		rdb:    rdb,
		prefix: prefix,
		cfg:    cfg,
		log:    logger.With("component", "webhook"),
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is an answer, and a failure
			},
		},
		wake:      make(chan struct{}, 1),
		deadSince: map[string]time.Time{},
	}
}

// key builds every webhook key name: "<prefix>{wh}" then the parts,
// colon-separated ("<prefix>{wh}q", "<prefix>{wh}d:<id>"). The hash tag
// {wh} puts them all in one Redis Cluster slot.
func (s *Service) key(parts ...string) string {
	k := s.base()
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}

// base is the tagged start of every key, which the scripts that find keys
// on their way build them from.
func (s *Service) base() string { return s.prefix + "{wh}" }

// owner is the owner id claims record: this process's liveness owner, or
// "" without liveness.
func (s *Service) owner() string {
	if s.cfg.Liveness == nil {
		return ""
	}
	return s.cfg.Liveness.Owner()
}

func (s *Service) nowMS() int64 { return s.cfg.Clock.Now().UnixMilli() }

// endpointHash names an endpoint URL in the breaker and concurrency keys.
func endpointHash(url string) string {
	h := sha256.Sum256([]byte(url))
	return hex.EncodeToString(h[:12])
}

// SetEndpoint sets (or replaces) the webhook URL of a subscription and
// enables it. secret is a "whsec_" secret from NewSecret; empty keeps the
// current secret (ErrInvalidSecret if there is none). The URL must pass
// ValidateURL under the service's AllowPrivate.
func (s *Service) SetEndpoint(ctx context.Context, subID, url, secret string) error {
	if subID == "" {
		return fmt.Errorf("set webhook endpoint: empty subscription id")
	}
	if err := ValidateURL(url, s.cfg.AllowPrivate); err != nil {
		return err
	}
	if secret != "" {
		if _, err := decodeSecret(secret); err != nil {
			return err
		}
	}
	hh, err := hostHash(url)
	if err != nil {
		return err
	}
	n, err := setEndpointScript.Run(ctx, s.rdb, []string{s.key("ep", subID)}, url, endpointHash(url), hh, secret, s.nowMS()).Int()
	if err != nil {
		return fmt.Errorf("set webhook endpoint: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: a new endpoint needs a secret", ErrInvalidSecret)
	}
	return nil
}

// RotateSecret gives the subscription's endpoint a new secret and returns
// it. For RotationOverlap the old secret keeps signing too (both signatures
// are sent), so the receiver can switch over. ErrNoEndpoint if there is no
// endpoint.
func (s *Service) RotateSecret(ctx context.Context, subID string) (string, error) {
	secret, err := NewSecret()
	if err != nil {
		return "", err
	}
	until := s.cfg.Clock.Now().Add(RotationOverlap).UnixMilli()
	n, err := rotateScript.Run(ctx, s.rdb, []string{s.key("ep", subID)}, secret, until).Int()
	if err != nil {
		return "", fmt.Errorf("rotate webhook secret: %w", err)
	}
	if n == 0 {
		return "", ErrNoEndpoint
	}
	return secret, nil
}

// DeleteEndpoint removes the subscription's endpoint and secret and, at
// once, every delivery record of the subscription: queued (pending,
// scheduled or retrying), dead letters, and the records of delivered ones.
// An attempt already in flight may still reach the endpoint; its outcome
// is dropped when it finishes (neither retried nor dead-lettered).
// Deleting a missing endpoint is not an error. On error, calling it again
// finishes the job.
func (s *Service) DeleteEndpoint(ctx context.Context, subID string) error {
	for {
		left, err := deleteScript.Run(ctx, s.rdb,
			[]string{s.key("ep", subID), s.key("sbusy", subID), s.key("s", subID), s.key("q"), s.key("dead")},
			s.base(), subID, s.nowMS(), deleteBatch).Int()
		if err != nil {
			return fmt.Errorf("delete webhook endpoint: %w", err)
		}
		if left == 0 {
			return nil
		}
	}
}

// deleteBatch is how many delivery records one call of deleteScript
// removes, so that a subscription with many does not block Redis for long.
const deleteBatch = 500

// Endpoint returns the subscription's webhook URL and whether it is enabled
// (an endpoint that answered 410 Gone is disabled until SetEndpoint).
// ErrNoEndpoint if there is none.
func (s *Service) Endpoint(ctx context.Context, subID string) (url string, enabled bool, err error) {
	v, err := s.rdb.HMGet(ctx, s.key("ep", subID), "url", "enabled").Result()
	if err != nil {
		return "", false, fmt.Errorf("get webhook endpoint: %w", err)
	}
	u, _ := v[0].(string)
	if u == "" {
		return "", false, ErrNoEndpoint
	}
	e, _ := v[1].(string)
	return u, e == "1", nil
}

// Delivery is one webhook call to make: the matches of one instant batch or
// digest. ID is the delivery id (the body's "id" and the webhook-id header);
// it must be stable, as enqueueing an id that is queued, delivered (within
// DoneTTL) or dead-lettered again is a no-op. More counts matches left out
// of Jobs.
type Delivery struct {
	ID             string
	SubscriptionID string
	Jobs           []matcher.Job
	More           int
}

type payload struct {
	Type           string            `json:"type"`
	ID             string            `json:"id"`
	SubscriptionID string            `json:"subscription_id"`
	Jobs           []json.RawMessage `json:"jobs"`
	More           int               `json:"more"`
}

// Body returns the JSON request body of d, at most MaxBodyBytes: trailing
// jobs that do not fit are counted in "more" instead.
func (d Delivery) Body() ([]byte, error) {
	if err := validID(d.ID); err != nil {
		return nil, fmt.Errorf("%w: id: %v", ErrInvalidDelivery, err)
	}
	if d.SubscriptionID == "" {
		return nil, fmt.Errorf("%w: empty subscription id", ErrInvalidDelivery)
	}
	if d.More < 0 {
		return nil, fmt.Errorf("%w: negative more", ErrInvalidDelivery)
	}
	p := payload{Type: "jobs.matched", ID: d.ID, SubscriptionID: d.SubscriptionID, Jobs: []json.RawMessage{}}
	empty, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode webhook body: %w", err)
	}
	// Room for the largest "more" and the commas between jobs.
	size := len(empty) + len(strconv.Itoa(len(d.Jobs)+d.More))
	for i := range d.Jobs {
		j, err := json.Marshal(&d.Jobs[i])
		if err != nil {
			return nil, fmt.Errorf("encode webhook body: job %q: %w", d.Jobs[i].ID, err)
		}
		if size+len(j)+1 > MaxBodyBytes {
			break
		}
		size += len(j) + 1
		p.Jobs = append(p.Jobs, j)
	}
	p.More = d.More + len(d.Jobs) - len(p.Jobs)
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encode webhook body: %w", err)
	}
	return b, nil
}

func validID(id string) error {
	if id == "" || len(id) > maxIDLength {
		return fmt.Errorf("want 1 to %d characters", maxIDLength)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("byte %d is not printable ASCII", i)
		}
	}
	return nil
}

// Enqueue queues d for delivery, its first attempt after Schedule[0]
// (at once by default). It is idempotent by d.ID and a no-op when the
// subscription has no enabled endpoint. Errors are ErrInvalidDelivery or
// a Redis failure (the caller retries).
func (s *Service) Enqueue(ctx context.Context, d Delivery) error {
	body, err := d.Body()
	if err != nil {
		return err
	}
	now := s.cfg.Clock.Now()
	due := now.Add(s.delay(0)).UnixMilli()
	cmd, short := s.runDurable(ctx, enqueueScript,
		[]string{s.key("d", d.ID), s.key("ep", d.SubscriptionID), s.key("q"), s.key("s", d.SubscriptionID)},
		d.SubscriptionID, body, now.UnixMilli(), due, d.ID)
	n, err := cmd.Int()
	if err == nil {
		err = short // queued, but not known to be on a replica: the caller tries again
	}
	if err != nil {
		return fmt.Errorf("enqueue webhook delivery %s: %w", d.ID, err)
	}
	if n == 1 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// delay returns the jittered delay before attempt i+1 (i counts from 0).
func (s *Service) delay(i int) time.Duration {
	d := s.cfg.Schedule[i]
	if d <= 0 || s.cfg.Jitter == 0 {
		return d
	}
	f := 1 + s.cfg.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}

// Delivery states reported by Status.
const (
	StateQueued    = "queued"
	StateDelivered = "delivered"
	StateDead      = "dead"
)

// Status is what is known about one delivery.
type Status struct {
	ID             string
	SubscriptionID string
	State          string    // StateQueued, StateDelivered or StateDead
	Attempts       int       // attempts made (since the last replay)
	NextAttempt    time.Time // queued only: when it is due (or its lease ends)
	LastAttempt    time.Time // zero before the first attempt
	LastStatus     int       // HTTP status of the last attempt, 0 if none
	LastError      string    // why the last attempt failed
	URL            string    // the URL of the last attempt
	DeadReason     string    // dead only: attempts exhausted, 410 Gone, endpoint disabled
	CreatedAt      time.Time
	DiedAt         time.Time
}

// DeadLetter is a delivery that will not be attempted again unless
// replayed.
type DeadLetter = Status

// Status returns the state of delivery id; ErrNotFound if it is unknown or
// expired.
func (s *Service) Status(ctx context.Context, id string) (Status, error) {
	pipe := s.rdb.Pipeline()
	h := pipe.HGetAll(ctx, s.key("d", id))
	sc := pipe.ZScore(ctx, s.key("q"), id)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Status{}, fmt.Errorf("webhook delivery status: %w", err)
	}
	m := h.Val()
	if len(m) == 0 {
		return Status{}, ErrNotFound
	}
	st := statusFrom(id, m)
	if st.State == StateQueued && sc.Err() == nil {
		st.NextAttempt = time.UnixMilli(int64(sc.Val()))
	}
	return st, nil
}

func statusFrom(id string, m map[string]string) Status {
	ms := func(k string) time.Time {
		n, err := strconv.ParseInt(m[k], 10, 64)
		if err != nil || n == 0 {
			return time.Time{}
		}
		return time.UnixMilli(n)
	}
	st := Status{
		ID: id, SubscriptionID: m["sub"], State: m["state"],
		LastError: m["last_error"], URL: m["url"], DeadReason: m["dead_reason"],
		LastAttempt: ms("last_at"), CreatedAt: ms("created"), DiedAt: ms("died"),
	}
	if st.State == "done" {
		st.State = StateDelivered
	}
	st.Attempts, _ = strconv.Atoi(m["attempts"])
	st.LastStatus, _ = strconv.Atoi(m["last_status"])
	return st
}

// DeadLetters returns up to limit dead letters, newest first.
func (s *Service) DeadLetters(ctx context.Context, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		return nil, nil
	}
	ids, err := s.rdb.ZRevRange(ctx, s.key("dead"), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("list webhook dead letters: %w", err)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, s.key("d", id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("list webhook dead letters: %w", err)
		}
	}
	out := make([]DeadLetter, 0, len(ids))
	for i, id := range ids {
		if m := cmds[i].Val(); m["state"] == "dead" {
			out = append(out, statusFrom(id, m))
		}
	}
	return out, nil
}

// Replay queues dead letter id for delivery again at once, with a fresh
// schedule. ErrNotFound, ErrNotDeadLetter, or ErrEndpointDisabled when the
// subscription's endpoint is missing or disabled (SetEndpoint first).
func (s *Service) Replay(ctx context.Context, id string) error {
	n, err := replayScript.Run(ctx, s.rdb, []string{s.key("d", id), s.key("q"), s.key("dead")}, s.base(), id, s.nowMS()).Int()
	if err != nil {
		return fmt.Errorf("replay webhook delivery %s: %w", id, err)
	}
	switch n {
	case 1:
		select {
		case s.wake <- struct{}{}:
		default:
		}
		return nil
	case 0:
		return ErrNotFound
	case -1:
		return ErrNotDeadLetter
	case -2:
		return ErrEndpointDisabled
	}
	return fmt.Errorf("replay webhook delivery %s: %w %d", id, errRedisScriptResult, n)
}
