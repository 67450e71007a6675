package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jobalert/jobalert/internal/redact"
)

// Run delivers due webhooks until ctx is done, with at most
// Config.Workers attempts in flight, then waits for those attempts to end
// (an attempt cut short by ctx is put back in the queue without counting)
// and returns nil. Redis errors are logged and retried; they do not stop
// Run.
//
// With Config.Liveness, Run beats once before its first claim, then hands
// back at once what an earlier boot of this instance still held, and every
// RecoverInterval what processes that stopped beating held (recoverOrphans).
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, s.cfg.Workers)
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	var recoverTick <-chan time.Time
	if l := s.cfg.Liveness; l != nil {
		if err := l.Beat(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("webhook liveness", "err", err)
		}
		s.recover(ctx, true)
		rt := time.NewTicker(s.cfg.RecoverInterval)
		defer rt.Stop()
		recoverTick = rt.C
	}
	for {
		if free := cap(slots) - len(slots); free > 0 {
			attempts, more, err := s.claim(ctx, free)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("claim webhook deliveries", "err", err)
			}
			for _, a := range attempts {
				slots <- struct{}{}
				wg.Go(func() {
					defer func() {
						<-slots
						select {
						case s.wake <- struct{}{}:
						default:
						}
					}()
					s.finish(ctx, a, s.send(ctx, a))
				})
			}
			if err == nil && more {
				continue // more may be due; claim again (when a slot is free)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-recoverTick:
			s.recover(ctx, false)
		case <-s.wake:
		}
	}
}

// recover runs recoverOrphans and logs what it did.
func (s *Service) recover(ctx context.Context, atStart bool) {
	n, err := s.recoverOrphans(ctx, atStart)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("recover webhook deliveries of dead processes", "err", err)
	case n > 0:
		s.log.Info("webhook deliveries of dead processes handed back", "deliveries", n)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// recoverOrphans hands back, due at once, the deliveries claimed by
// owners that no longer beat (internal/liveness) and, atStart, by earlier
// boots of this instance (taken back without waiting for their key to
// expire), instead of after their lease. An owner must be seen not
// beating twice, at least one beat interval (Liveness.Every) apart, so
// that a key lost by a Redis failover, which its process sets again at its
// next beat, does not hand back a live process's work. It returns how
// many it handed back. When liveness cannot be read it hands back
// nothing: the leases still apply.
func (s *Service) recoverOrphans(ctx context.Context, atStart bool) (int, error) {
	l := s.cfg.Liveness
	owners, err := s.rdb.ZRange(ctx, s.key("owners"), 0, -1).Result()
	if err != nil {
		return 0, err
	}
	var ask, orphans []string
	for _, o := range owners {
		switch {
		case o == l.Owner():
		case atStart && l.SameInstance(o):
			orphans = append(orphans, o)
		default:
			ask = append(ask, o)
		}
	}
	if len(ask) > 0 {
		alive, err := l.Alive(ctx, ask...)
		if err != nil {
			return 0, err
		}
		now := l.Now()
		s.deadMu.Lock()
		for o, since := range s.deadSince {
			if alive[o] || !slices.Contains(ask, o) {
				delete(s.deadSince, o)
			} else if now.Sub(since) >= l.Every() {
				orphans = append(orphans, o)
			}
		}
		for _, o := range ask {
			if _, seen := s.deadSince[o]; !seen && !alive[o] {
				s.deadSince[o] = now
			}
		}
		s.deadMu.Unlock()
	}
	total := 0
	for _, o := range orphans {
		n, err := recoverScript.Run(ctx, s.rdb, []string{s.key("q"), s.key("owners"), s.key("own", o)},
			s.base(), s.nowMS(), o).Int()
		if err != nil {
			return total, fmt.Errorf("hand back the deliveries of %s: %w", o, err)
		}
		if n > 0 {
			s.log.Info("webhook deliveries of a dead process handed back", "owner", o, "deliveries", n)
		}
		s.deadMu.Lock()
		delete(s.deadSince, o)
		s.deadMu.Unlock()
		total += n
	}
	return total, nil
}

type claim struct{ id, token string }

// attempt is a claimed delivery cleared for sending.
type attempt struct {
	claim
	sub         string
	url, eh, hh string
	secrets     string // space-separated, newest first
	body        []byte
	attempts    int // made before this one
}

// claim admits up to n due deliveries for an attempt now (see claimScript:
// those whose URL, host or subscription is at its limit, or whose breaker
// is open, are put back for later without an attempt). more reports that
// due deliveries may be left unexamined.
func (s *Service) claim(ctx context.Context, n int) (out []attempt, more bool, err error) {
	now := s.cfg.Clock.Now()
	nowMS := now.UnixMilli()
	deferMin := s.deferDelay().Milliseconds()
	cmd, short := s.runDurable(ctx, claimScript, []string{s.key("q"), s.key("dead"), s.key("owners"), s.key("own", s.owner())},
		s.base(), nowMS, now.Add(s.cfg.Lease).UnixMilli(),
		n, 4*n+32, s.cfg.PerEndpoint, s.cfg.PerHost, s.cfg.PerSubscription,
		deferMin, deferMin, (s.cfg.BreakerCooldown/10 + time.Millisecond).Milliseconds(),
		s.cfg.DeadLetterTTL.Milliseconds(), s.gcTTL(), 1+rand.Int64N(2147483646), s.owner())
	v, err := cmd.Slice()
	if err != nil {
		return nil, false, err
	}
	if short != nil {
		s.log.Warn("webhook claim not confirmed by a replica: attempted anyway (a failover now may mean a second attempt)", "err", short)
	}
	if len(v) != 2 {
		return nil, false, errRedisScriptResult
	}
	flag, _ := v[0].(int64)
	recs, _ := v[1].([]any)
	hosts := map[[2]string]bool{}
	for _, r := range recs {
		f, _ := r.([]any)
		str := func(i int) string {
			if i < len(f) {
				x, _ := f[i].(string)
				return x
			}
			return ""
		}
		switch str(0) {
		case "go":
			if len(f) != 12 {
				s.log.Error("claim webhook deliveries", "err", errRedisScriptResult)
				continue
			}
			a := attempt{claim: claim{id: str(1), token: str(2)}, sub: str(3), url: str(4), eh: str(5), hh: str(6),
				secrets: str(7), body: []byte(str(10))}
			if prevUntil, _ := strconv.ParseInt(str(9), 10, 64); str(8) != "" && nowMS < prevUntil {
				a.secrets += " " + str(8)
			}
			a.attempts, _ = strconv.Atoi(str(11))
			out = append(out, a)
		case "disabled":
			s.cfg.Metrics.deadLetter("disabled")
			s.log.Info("webhook endpoint disabled: delivery dead-lettered", "delivery", str(1))
		case "host":
			hosts[[2]string{str(1), str(2)}] = true
		}
	}
	more = flag == 1
	// Endpoints set before host keys existed get theirs now; their
	// deliveries are still due, so claim again.
	for k := range hosts {
		hh, herr := hostHash(k[1])
		if herr == nil {
			herr = setHostScript.Run(ctx, s.rdb, []string{s.key("ep", k[0])}, k[1], hh).Err()
		}
		if herr != nil {
			return out, false, fmt.Errorf("set host key of %s: %w", k[0], herr)
		}
		more = true
	}
	return out, more, nil
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
	s.cfg.Metrics.attempt(r)
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
	// The error is logged and kept with the delivery: an HTTP client's
	// error quotes the whole URL, a redirect's Location or the receiver's
	// answer may hold tokens or addresses; only hosts and redacted
	// addresses remain (internal/redact).
	errText := redact.Error(r.err)
	slow := 0
	if outcome == "ok" && s.cfg.SlowAfter > 0 && r.dur > s.cfg.SlowAfter {
		slow = 1
	}
	keys := []string{s.key("d", a.id), s.key("q"), s.key("dead"), s.key("s", a.sub), s.key("ep", a.sub),
		s.key("busy", a.eh), s.key("hbusy", a.hh), s.key("sbusy", a.sub), s.key("cb", a.eh), s.key("cbopen"), s.key("own", s.owner())}
	got, err := finishScript.Run(ctx, s.rdb, keys, a.id, a.token, a.eh, now.UnixMilli(), outcome, next,
		r.status, errText, a.url, s.cfg.BreakerThreshold, s.cfg.BreakerCooldown.Milliseconds(), hold,
		s.cfg.DeadLetterTTL.Milliseconds(), s.cfg.DoneTTL.Milliseconds(), s.gcTTL(), slow).Text()
	log := s.log.With("delivery", a.id, "attempt", a.attempts+1, "status", r.status, "duration", r.dur)
	if err != nil {
		log.Error("record webhook attempt", "outcome", outcome, "err", err)
		return
	}
	switch got {
	case "ok":
		log.Debug("webhook delivered")
	case "slow":
		log.Info("webhook delivered slowly: counts toward the circuit breaker", "slow_after", s.cfg.SlowAfter)
	case "retry":
		log.Info("webhook attempt failed; will retry", "err", errText, "next", time.UnixMilli(next))
	case "dead":
		s.cfg.Metrics.deadLetter("exhausted")
		log.Warn("webhook attempts exhausted: dead letter", "err", errText)
	case "gone":
		s.cfg.Metrics.deadLetter("gone")
	case "disabled":
		s.cfg.Metrics.deadLetter("gone")
		log.Warn("webhook endpoint answered 410 Gone: disabled")
		if s.cfg.OnGone != nil {
			s.cfg.OnGone(runCtx, a.sub, a.url)
		}
	case "lost":
		log.Warn("webhook attempt outlived its lease; outcome dropped", "outcome", outcome)
	case "dropped":
		log.Info("webhook endpoint deleted during the attempt; outcome dropped", "outcome", outcome)
	}
}
