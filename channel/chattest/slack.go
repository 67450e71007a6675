package chattest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"unicode/utf8"
)

// Slack's limits the fake enforces (api.slack.com/reference/block-kit).
const (
	SlackMaxBlocks      = 50
	SlackMaxText        = 3000
	SlackMaxHeader      = 150
	SlackMaxContextElts = 10
)

// SlackText is a Block Kit text object as received.
type SlackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// SlackBlock is a Block Kit block as received.
type SlackBlock struct {
	Type     string       `json:"type"`
	Text     *SlackText   `json:"text"`
	Elements []*SlackText `json:"elements"`
}

// SlackPayload is a message as received.
type SlackPayload struct {
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// Slack is a fake Slack incoming webhook at URL.
type Slack struct {
	URL    string // the webhook's URL, under /services/
	srv    string
	script script

	mu       sync.Mutex
	received []SlackPayload
	requests int
	gone     bool
}

// NewSlack starts a fake Slack webhook, closed when the test ends.
func NewSlack(tb testing.TB) *Slack {
	s := &Slack{}
	srv := start(tb, s)
	s.srv = srv.URL
	s.URL = srv.URL + "/services/T0000FAKE/B0000FAKE/abcdefghijklmnopqrstuvwx"
	return s
}

// RateLimit makes the next n requests answer as Slack does when rate
// limited: 429, Retry-After: retryAfter (seconds), body "rate_limited".
func (s *Slack) RateLimit(n int, retryAfter string) {
	s.script.push(n, func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", retryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, "rate_limited")
	})
}

// Fail makes the next n requests answer status with body.
func (s *Slack) Fail(n, status int, body string) {
	s.script.push(n, func(w http.ResponseWriter) {
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

// Delete makes the webhook answer as a removed one does: 404 no_service.
func (s *Slack) Delete() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gone = true
}

// Received returns the messages accepted so far.
func (s *Slack) Received() []SlackPayload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SlackPayload(nil), s.received...)
}

// Requests counts every request, accepted or not.
func (s *Slack) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Slack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	gone := s.gone
	s.mu.Unlock()
	if f := s.script.pop(); f != nil {
		f(w)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/services/T0000FAKE/B0000FAKE/abcdefghijklmnopqrstuvwx" || gone {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "no_service")
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var p SlackPayload
	if err := json.Unmarshal(body, &p); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_payload")
		return
	}
	if p.Text == "" && len(p.Blocks) == 0 {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "no_text")
		return
	}
	if err := CheckSlack(p); err != nil {
		w.Header().Set("X-Fake-Reason", err.Error())
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "invalid_blocks")
		return
	}
	s.mu.Lock()
	s.received = append(s.received, p)
	s.mu.Unlock()
	io.WriteString(w, "ok")
}

// CheckSlack returns the first of Slack's documented limits p breaks.
func CheckSlack(p SlackPayload) error {
	if len(p.Blocks) > SlackMaxBlocks {
		return fmt.Errorf("%d blocks, more than %d", len(p.Blocks), SlackMaxBlocks)
	}
	for i, b := range p.Blocks {
		switch b.Type {
		case "header":
			if b.Text == nil || b.Text.Type != "plain_text" || b.Text.Text == "" {
				return fmt.Errorf("block %d: a header needs plain_text", i)
			}
			if n := utf8.RuneCountInString(b.Text.Text); n > SlackMaxHeader {
				return fmt.Errorf("block %d: header of %d characters, more than %d", i, n, SlackMaxHeader)
			}
		case "section":
			if b.Text == nil || b.Text.Text == "" {
				return fmt.Errorf("block %d: a section needs text", i)
			}
			if n := utf8.RuneCountInString(b.Text.Text); n > SlackMaxText {
				return fmt.Errorf("block %d: section text of %d characters, more than %d", i, n, SlackMaxText)
			}
		case "context":
			if len(b.Elements) == 0 || len(b.Elements) > SlackMaxContextElts {
				return fmt.Errorf("block %d: context with %d elements (1 to %d)", i, len(b.Elements), SlackMaxContextElts)
			}
			for _, e := range b.Elements {
				if n := utf8.RuneCountInString(e.Text); n == 0 || n > SlackMaxText {
					return fmt.Errorf("block %d: context text of %d characters", i, n)
				}
			}
		case "divider":
		default:
			return fmt.Errorf("block %d: unknown type %q", i, b.Type)
		}
	}
	return nil
}
