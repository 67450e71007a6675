// Package chattest has httptest servers that behave like Slack's incoming
// webhooks, Discord's webhooks and Telegram's Bot API as far as jobalert
// uses them: they enforce the services' documented message limits and
// answer a message over any of them with the service's own error shape,
// can be told to answer 429 with each service's real rate-limit answer or
// to act as a deleted webhook or a blocked bot, and record what they
// accepted. For tests only.
package chattest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// script is a queue of canned answers that take precedence over the
// normal behaviour, one per request.
type script struct {
	mu    sync.Mutex
	queue []func(http.ResponseWriter) // each writes a whole answer
}

func (s *script) push(n int, f func(http.ResponseWriter)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.queue = append(s.queue, f)
	}
}

func (s *script) pop() func(http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return nil
	}
	f := s.queue[0]
	s.queue = s.queue[1:]
	return f
}

func start(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	srv := httptest.NewServer(h) // listens on 127.0.0.1
	tb.Cleanup(srv.Close)
	return srv
}
