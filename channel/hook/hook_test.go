package hook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/chattest"
	"github.com/jobalert/jobalert/channel/hook"
	"github.com/jobalert/jobalert/internal/testenv"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0.25", 250 * time.Millisecond, true},
		{" 12 ", 12 * time.Second, true},
		{"Sun, 06 Dec 2026 10:00:30 GMT", 30 * time.Second, true},
		{"Sun, 06 Dec 2026 09:00:00 GMT", 0, true},
		{"", 0, false}, {"soon", 0, false}, {"-1", 0, false}, {"99999999", 0, false},
	} {
		got, ok := hook.RetryAfter(c.in, now)
		if got != c.want || ok != c.ok {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestAttemptsAreBounded: a service that keeps answering 429 gets
// Attempts tries, and the caller a TemporaryError with the last wait.
func TestAttemptsAreBounded(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	sl := &chattest.Sleeper{}
	c := hook.New(hook.Options{AllowPrivate: true, Attempts: 3, Sleep: sl.Sleep})
	judge := func(a hook.Answer) hook.Verdict {
		if a.Status == 429 {
			return hook.Verdict{Err: &channel.TemporaryError{After: 2 * time.Second, Err: errors.New("429")}, RetryAfter: 2 * time.Second}
		}
		return hook.Verdict{}
	}
	_, err := c.Post(context.Background(), srv.URL, []byte(`{}`), judge)
	var temp *channel.TemporaryError
	if !errors.As(err, &temp) || temp.After != 2*time.Second {
		t.Errorf("got %v, want a TemporaryError after 2s", err)
	}
	if n != 3 || len(sl.Waited()) != 2 {
		t.Errorf("%d requests and %d waits, want 3 and 2", n, len(sl.Waited()))
	}
	// A redirect is an answer, never followed.
	redirect := httptest.NewServer(http.RedirectHandler(srv.URL, http.StatusFound))
	defer redirect.Close()
	n = 0
	a, err := c.Post(context.Background(), redirect.URL, []byte(`{}`), func(a hook.Answer) hook.Verdict { return hook.Verdict{} })
	if err != nil || a.Status != http.StatusFound || n != 0 {
		t.Errorf("redirect: status %d, err %v, %d requests to the target; want 302 unfollowed", a.Status, err, n)
	}
}

// TestLimitsAcrossReplicas: a 429 met by one replica holds the webhook
// for every replica sharing the Redis, without a request.
func TestLimitsAcrossReplicas(t *testing.T) {
	rdb, prefix := testenv.Redis(t)
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	target := srv.URL + "/services/T/B/secret-part"
	judge := func(a hook.Answer) hook.Verdict {
		if a.Status == 429 {
			return hook.Verdict{Err: &channel.TemporaryError{After: 30 * time.Second, Err: errors.New("429")}, RetryAfter: 30 * time.Second}
		}
		return hook.Verdict{}
	}
	replica := func() *hook.Client {
		return hook.New(hook.Options{AllowPrivate: true, MaxWait: time.Second, Limits: hook.NewLimits(rdb, prefix, nil), Sleep: (&chattest.Sleeper{}).Sleep})
	}
	ctx := context.Background()
	var temp *channel.TemporaryError
	if _, err := replica().Post(ctx, target, []byte(`{}`), judge); !errors.As(err, &temp) || temp.After != 30*time.Second {
		t.Fatalf("first replica: got %v, want a TemporaryError after 30s", err)
	}
	_, err := replica().Post(ctx, target, []byte(`{}`), judge)
	if !errors.As(err, &temp) || temp.After <= 25*time.Second || temp.After > 30*time.Second {
		t.Errorf("second replica: got %v, want a TemporaryError after about 30s", err)
	}
	if n != 1 {
		t.Errorf("the service got %d requests, want 1: the second replica must not post while held", n)
	}
	keys, _ := rdb.Keys(ctx, prefix+"*").Result()
	if len(keys) != 1 || strings.Contains(keys[0], "secret") || !strings.Contains(keys[0], "{chatrl:") {
		t.Errorf("keys %v, want one {chatrl:<hash>} key without the URL", keys)
	}
}
