// Package hook posts JSON to a chat service's incoming-webhook URL (Slack,
// Discord, and Slack-compatible chats such as Mattermost) through the SSRF
// guard of package webhook: its dialer refuses private, loopback and
// link-local addresses after DNS resolution unless AllowPrivate is set,
// no proxy dials for it, and redirects are not followed. A 429 is retried
// after the wait the service names, a bounded number of times; what each
// answer means is the service package's call (a Judge).
package hook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/internal/redact"
	"github.com/jobalert/jobalert/webhook"
)

// Defaults of Options.
const (
	DefaultTimeout  = 15 * time.Second
	DefaultMaxWait  = time.Minute
	DefaultAttempts = 4
	maxAnswer       = 64 << 10 // bytes of an answer read
)

// Options configures a Client.
type Options struct {
	// AllowPrivate lets the client connect to private and loopback
	// addresses (JOBALERT_WEBHOOK_ALLOW_PRIVATE: tests, self-hosted chats).
	AllowPrivate bool
	// Timeout bounds one request; 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxWait is the longest rate-limit wait the client sits out itself;
	// a longer one is returned as a *channel.TemporaryError for the
	// caller's queue. 0 means DefaultMaxWait.
	MaxWait time.Duration
	// Attempts bounds the tries of one message (first one included); 0
	// means DefaultAttempts.
	Attempts int
	// Sleep waits between tries; nil means channel.RealSleep.
	Sleep channel.Sleep
	// Resolver, when not nil, resolves host names (tests).
	Resolver *net.Resolver
	// TLSClientConfig, when not nil, is used for https (tests with an
	// httptest TLS server).
	TLSClientConfig *tls.Config
	// Limits remembers rate limits per destination; nil means in memory.
	Limits *Limits
}

// Client posts to incoming webhooks. It is safe for concurrent use.
type Client struct {
	limits   *Limits
	http     *http.Client
	sleep    channel.Sleep
	maxWait  time.Duration
	attempts int
}

// New returns a Client.
func New(o Options) *Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.Attempts <= 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Sleep == nil {
		o.Sleep = channel.RealSleep
	}
	if o.Limits == nil {
		o.Limits = NewLimits(nil, "", nil)
	}
	tr := &http.Transport{
		Proxy:               nil, // a proxy would dial for us, past the SSRF guard
		DialContext:         webhook.Dialer(o.AllowPrivate, o.Resolver).DialContext,
		TLSClientConfig:     o.TLSClientConfig,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &Client{
		limits: o.Limits,
		http: &http.Client{
			Timeout:   o.Timeout,
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a 3xx is an answer, and a failure
			},
		},
		sleep:    o.Sleep,
		maxWait:  o.MaxWait,
		attempts: o.Attempts,
	}
}

// Answer is one response of the service.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte // at most 64 KiB
}

// Verdict is what a service package makes of an Answer. A nil Err is a
// success. RetryAfter > 0 (with Err set) asks for another try after that
// wait: the client sits it out when it is at most MaxWait and tries are
// left, else it returns a *channel.TemporaryError carrying it.
type Verdict struct {
	Err        error
	RetryAfter time.Duration
}

// Judge reads an Answer.
type Judge func(Answer) Verdict

// Post sends body (JSON) to target and returns the successful Answer. A
// failure wraps channel.ErrGone, channel.ErrPermanent or is a
// *channel.TemporaryError (network errors, 5xx, rate limits beyond the
// tries or MaxWait); its text names only the target's host.
func (c *Client) Post(ctx context.Context, target string, body []byte, judge Judge) (Answer, error) {
	var last error
	for try := 1; ; try++ {
		left, err := c.limits.Left(ctx, target)
		if err != nil {
			return Answer{}, &channel.TemporaryError{Err: err}
		}
		if left > c.maxWait {
			return Answer{}, &channel.TemporaryError{After: left, Err: errors.New("rate limited: the service asked for a pause")}
		}
		if left > 0 {
			if err := c.sleep(ctx, left); err != nil {
				return Answer{}, err
			}
		}
		a, err := c.once(ctx, target, body)
		var v Verdict
		if err != nil {
			if ctx.Err() != nil {
				return Answer{}, ctx.Err()
			}
			if errors.Is(err, webhook.ErrForbiddenAddress) {
				return Answer{}, fmt.Errorf("%w: %w", channel.ErrPermanent, redact.Wrap(err))
			}
			v = Verdict{Err: &channel.TemporaryError{Err: redact.Wrap(err)}}
		} else {
			v = judge(a)
		}
		if v.Err == nil {
			return a, nil
		}
		last = v.Err
		var temp *channel.TemporaryError
		if v.RetryAfter <= 0 || !errors.As(v.Err, &temp) {
			return Answer{}, v.Err
		}
		if err := c.limits.Hold(ctx, target, v.RetryAfter); err != nil {
			return Answer{}, &channel.TemporaryError{After: v.RetryAfter, Err: errors.Join(last, err)}
		}
		if v.RetryAfter > c.maxWait || try >= c.attempts {
			return Answer{}, &channel.TemporaryError{After: v.RetryAfter, Err: last}
		}
		// The next round waits the hold out.
	}
}

// Hold records that target must not be posted to for d (a rate-limit
// bucket that is empty): the next Post to it waits first.
func (c *Client) Hold(ctx context.Context, target string, d time.Duration) error {
	return c.limits.Hold(ctx, target, d)
}

func (c *Client) once(ctx context.Context, target string, body []byte) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "jobalert")
	resp, err := c.http.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Answer{}, err
	}
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// RetryAfter reads a Retry-After header, delay-seconds (fractions
// accepted, as Discord sends them) or an HTTP-date relative to now; ok is
// false when the header is absent or unreadable. A past date is 0.
func RetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 || f > 86400*7 {
			return 0, false
		}
		return time.Duration(f * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// Excerpt returns the start of an answer's body for an error message,
// redacted (redact.Text) and on one line.
func Excerpt(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	return redact.Text(channel.Truncate(s, 200))
}

// PostEach posts the payloads to target in order, each JSON-encoded and
// judged by judge, and returns how many were accepted, so that a retry
// resumes after them instead of posting them twice. after, when set, is
// called with each accepted answer (e.g. to hold the target when the
// service says its bucket is empty). service names the errors.
func PostEach[P any](ctx context.Context, c *Client, service, target string, payloads []P, judge Judge, after func(Answer) error) (sent int, err error) {
	for _, p := range payloads {
		body, err := json.Marshal(p)
		if err != nil {
			return sent, fmt.Errorf("%s: encode: %w", service, err)
		}
		a, err := c.Post(ctx, target, body, judge)
		if err != nil {
			return sent, fmt.Errorf("%s: %w", service, err)
		}
		sent++
		if after != nil {
			if err := after(a); err != nil {
				return sent, fmt.Errorf("%s: %w", service, err)
			}
		}
	}
	return sent, nil
}

// StatusVerdict judges an answer that is neither a success nor a 429 by
// its status: gone (the destination was deleted) is channel.ErrGone, a 5xx
// a *channel.TemporaryError, any other a channel.ErrPermanent.
func StatusVerdict(a Answer, gone bool) Verdict {
	switch {
	case gone:
		return Verdict{Err: fmt.Errorf("%w: HTTP %d %s", channel.ErrGone, a.Status, Excerpt(a.Body))}
	case a.Status >= 500:
		return Verdict{Err: &channel.TemporaryError{Err: fmt.Errorf("HTTP %d %s", a.Status, Excerpt(a.Body))}}
	}
	return Verdict{Err: fmt.Errorf("%w: HTTP %d %s", channel.ErrPermanent, a.Status, Excerpt(a.Body))}
}
