package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Run delivers due webhooks until ctx is done, with at most
// Config.Workers attempts in flight, then waits for those attempts to end
// (an attempt cut short by ctx is put back in the queue without counting)
// and returns nil. Redis errors are logged and retried; they do not stop
// Run.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, s.cfg.Workers)
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	for {
		if free := cap(slots) - len(slots); free > 0 {
			claims, err := s.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("claim webhook deliveries", "err", err)
			}
			for _, c := range claims {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-slots
						select {
						case s.wake <- struct{}{}:
						default:
						}
					}()
					s.process(ctx, c)
				})
			}
			if err == nil && len(claims) == free {
				continue // maybe more are due; claim again when a slot frees
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.wake:
		}
	}
}

type claim struct{ id, token string }

func (s *Service) claim(ctx context.Context, n int) ([]claim, error) {
	now := s.cfg.Clock.Now()
	v, err := claimScript.Run(ctx, s.rdb, nil, s.prefix, now.UnixMilli(), now.Add(s.cfg.Lease).UnixMilli(), n).StringSlice()
	if err != nil {
		return nil, err
	}
	out := make([]claim, 0, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		out = append(out, claim{id: v[i], token: v[i+1]})
	}
	return out, nil
}

// attempt is a claimed delivery cleared for sending.
type attempt struct {
	claim
	sub      string
	url, eh  string
	secrets  string // space-separated, newest first
	body     []byte
	attempts int // made before this one
}

func (s *Service) process(ctx context.Context, c claim) {
	a, ok := s.begin(ctx, c)
	if !ok {
		return
	}
	res := s.send(ctx, a)
	s.finish(ctx, a, res)
}

func (s *Service) begin(ctx context.Context, c claim) (attempt, bool) {
	now := s.cfg.Clock.Now()
	nowMS := now.UnixMilli()
	busy := now.Add(time.Second + rand.N(time.Second)).UnixMilli()
	postponeJitter := rand.N(s.cfg.BreakerCooldown/10 + time.Millisecond).Milliseconds()
	v, err := beginScript.Run(ctx, s.rdb, nil, s.prefix, c.id, c.token, nowMS, s.cfg.PerEndpoint,
		now.Add(s.cfg.Lease).UnixMilli(), busy, postponeJitter,
		s.cfg.DeadLetterTTL.Milliseconds(), s.gcTTL()).StringSlice()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("begin webhook attempt", "delivery", c.id, "err", err)
		}
		return attempt{}, false // the lease expires and it is claimed again
	}
	if len(v) == 0 || v[0] != "go" {
		if len(v) > 0 && v[0] == "disabled" {
			s.log.Info("webhook endpoint disabled: delivery dead-lettered", "delivery", c.id)
		}
		return attempt{}, false
	}
	if len(v) != 9 {
		s.log.Error("begin webhook attempt", "delivery", c.id, "err", errRedisScriptResult)
		return attempt{}, false
	}
	a := attempt{claim: c, url: v[1], eh: v[2], secrets: v[3], body: []byte(v[6]), sub: v[8]}
	if prevUntil, _ := strconv.ParseInt(v[5], 10, 64); v[4] != "" && nowMS < prevUntil {
		a.secrets += " " + v[4]
	}
	a.attempts, _ = strconv.Atoi(v[7])
	return a, true
}

// gcTTL is the real-time expiry of breaker and concurrency keys, which
// only have to outlive their use.
func (s *Service) gcTTL() int64 {
	return (7 * 24 * time.Hour).Milliseconds()
}

// result is the outcome of one HTTP attempt.
type result struct {
	status     int
	err        error
	retryAfter time.Duration // > 0 when a 429/503 said when to come back
	canceled   bool          // Run is stopping: not an attempt
	dur        time.Duration
}

func (r result) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

func (s *Service) send(ctx context.Context, a attempt) result {
	ts := s.cfg.Clock.Now()
	sig, err := Sign(a.secrets, a.id, ts, a.body)
	if err != nil {
		return result{err: fmt.Errorf("sign: %w", err)}
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, a.url, bytes.NewReader(a.body))
	if err != nil {
		return result{err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	req.Header.Set("webhook-id", a.id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	start := time.Now()
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return result{canceled: true}
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no response within %v", s.cfg.Timeout)
		}
		return result{err: err, dur: time.Since(start)}
	}
	defer resp.Body.Close()
	snippet := make([]byte, 200)
	n, _ := io.ReadFull(resp.Body, snippet)
	_, rerr := io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes-int64(n)))
	res := result{status: resp.StatusCode, dur: time.Since(start)}
	if res.ok() {
		// The receiver has accepted; how the rest of the body goes does not matter.
		return res
	}
	if rerr != nil && ctx.Err() != nil {
		return result{canceled: true}
	}
	res.err = fmt.Errorf("status %d%s", resp.StatusCode, describeBody(snippet[:n], n == len(snippet)))
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		res.err = fmt.Errorf("status %d redirect to %q (redirects are not followed)%s",
			resp.StatusCode, resp.Header.Get("Location"), describeBody(snippet[:n], n == len(snippet)))
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), ts); ok {
			res.retryAfter = d
		}
	}
	return res
}

func describeBody(b []byte, truncated bool) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))
	if s == "" {
		return ""
	}
	if truncated {
		s += "..."
	}
	return ": " + strconv.Quote(s)
}

// parseRetryAfter reads a Retry-After header, delay-seconds or HTTP-date
// (RFC 9110 §10.2.3), clamped to [MinRetryAfter, MaxRetryAfter].
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(MaxRetryAfter/time.Second) {
			n = int64(MaxRetryAfter / time.Second)
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	return min(max(d, MinRetryAfter), MaxRetryAfter), true
}

func (s *Service) finish(runCtx context.Context, a attempt, r result) {
	// Record the outcome even when Run is stopping.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(runCtx), 10*time.Second)
	defer cancel()
	now := s.cfg.Clock.Now()
	var outcome string
	var next, hold int64
	switch {
	case r.canceled:
		outcome = "release"
	case r.ok():
		outcome = "ok"
	case r.status == http.StatusGone:
		outcome = "gone"
	case a.attempts+1 >= len(s.cfg.Schedule):
		outcome = "dead"
	default:
		outcome = "retry"
		d := s.delay(a.attempts + 1)
		if r.retryAfter > 0 {
			d = r.retryAfter
			hold = now.Add(d).UnixMilli()
		}
		next = now.Add(d).UnixMilli()
	}
	errText := ""
	if r.err != nil {
		errText = r.err.Error()
	}
	got, err := finishScript.Run(ctx, s.rdb, nil, s.prefix, a.id, a.token, a.eh, now.UnixMilli(), outcome, next,
		r.status, errText, a.url, s.cfg.BreakerThreshold, s.cfg.BreakerCooldown.Milliseconds(), hold,
		s.cfg.DeadLetterTTL.Milliseconds(), s.cfg.DoneTTL.Milliseconds(), s.gcTTL()).Text()
	log := s.log.With("delivery", a.id, "attempt", a.attempts+1, "status", r.status, "duration", r.dur)
	if err != nil {
		log.Error("record webhook attempt", "outcome", outcome, "err", err)
		return
	}
	switch got {
	case "ok":
		log.Debug("webhook delivered")
	case "retry":
		log.Info("webhook attempt failed; will retry", "err", errText, "next", time.UnixMilli(next))
	case "dead":
		log.Warn("webhook attempts exhausted: dead letter", "err", errText)
	case "disabled":
		log.Warn("webhook endpoint answered 410 Gone: disabled")
		if s.cfg.OnGone != nil {
			s.cfg.OnGone(runCtx, a.sub, a.url)
		}
	case "lost":
		log.Warn("webhook attempt outlived its lease; outcome dropped", "outcome", outcome)
	}
}
