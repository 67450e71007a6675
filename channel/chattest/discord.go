package chattest

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Discord's limits the fake enforces
// (discord.com/developers/docs/resources/message#embed-object-embed-limits).
const (
	DiscordMaxContent     = 2000
	DiscordMaxEmbeds      = 10
	DiscordMaxTitle       = 256
	DiscordMaxDescription = 4096
	DiscordMaxFields      = 25
	DiscordMaxFieldName   = 256
	DiscordMaxFieldValue  = 1024
	DiscordMaxFooter      = 2048
	DiscordMaxAuthor      = 256
	DiscordMaxTotal       = 6000
)

// DiscordEmbed is an embed as received.
type DiscordEmbed struct {
	Title       string `json:"title"`
	URL         string `json:"url"`
	Description string `json:"description"`
	Timestamp   string `json:"timestamp"`
	Fields      []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"fields"`
	Footer *struct {
		Text string `json:"text"`
	} `json:"footer"`
	Author *struct {
		Name string `json:"name"`
	} `json:"author"`
}

// DiscordPayload is a message as received.
type DiscordPayload struct {
	Content         string         `json:"content"`
	Embeds          []DiscordEmbed `json:"embeds"`
	AllowedMentions *struct {
		Parse []string `json:"parse"`
	} `json:"allowed_mentions"`
}

// Discord is a fake Discord webhook at URL with a rate-limit bucket of
// Limit messages per Window, timed by Now: every answer carries the
// X-RateLimit-* headers, and a message past the bucket gets Discord's
// 429. Tests move Now (a fake clock) when the sender waits.
type Discord struct {
	URL    string // https://…/api/webhooks/<id>/<token>, on 127.0.0.1
	path   string
	script script
	Now    func() time.Time
	Limit  int
	Window time.Duration

	mu       sync.Mutex
	received []DiscordPayload
	requests int
	limited  int // 429s the bucket gave
	gone     bool
	used     int
	reset    time.Time
}

// NewDiscord starts a fake Discord webhook with a bucket of 5 messages
// per 2 s on the given clock (nil: time.Now).
func NewDiscord(tb testing.TB, now func() time.Time) *Discord {
	if now == nil {
		now = time.Now
	}
	d := &Discord{Now: now, Limit: 5, Window: 2 * time.Second, path: "/api/webhooks/123456789012345678/fake-token_abc"}
	srv := start(tb, d)
	d.URL = srv.URL + d.path
	return d
}

func (d *Discord) writeRateLimited(w http.ResponseWriter, retry float64, global bool) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(retry))))
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
	w.Header().Set("X-RateLimit-Remaining", "0")
	w.Header().Set("X-RateLimit-Reset-After", strconv.FormatFloat(retry, 'f', 3, 64))
	w.Header().Set("X-RateLimit-Bucket", "fakebucket")
	w.Header().Set("X-RateLimit-Scope", "user")
	if global {
		w.Header().Set("X-RateLimit-Global", "true")
		w.Header().Set("X-RateLimit-Scope", "global")
	}
	w.WriteHeader(http.StatusTooManyRequests)
	json.NewEncoder(w).Encode(map[string]any{"message": "You are being rate limited.", "retry_after": retry, "global": global})
}

// RateLimit makes the next n requests answer Discord's 429: JSON
// {"message":"You are being rate limited.","retry_after":retry,"global":false}
// with Retry-After and X-RateLimit-* headers.
func (d *Discord) RateLimit(n int, retry float64) {
	d.script.push(n, func(w http.ResponseWriter) { d.writeRateLimited(w, retry, false) })
}

// Fail makes the next n requests answer status with a JSON error.
func (d *Discord) Fail(n, status int) {
	d.script.push(n, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"message": "%s", "code": 0}`, http.StatusText(status))
	})
}

// Delete makes the webhook answer as a deleted one: 404 Unknown Webhook.
func (d *Discord) Delete() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gone = true
}

// Received returns the messages accepted so far.
func (d *Discord) Received() []DiscordPayload {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]DiscordPayload(nil), d.received...)
}

// Requests counts every request; Limited the 429s the bucket gave (not
// those scripted by RateLimit).
func (d *Discord) Requests() (requests, limited int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.requests, d.limited
}

func (d *Discord) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.requests++
	gone := d.gone
	d.mu.Unlock()
	if f := d.script.pop(); f != nil {
		f(w)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != d.path || gone {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message": "Unknown Webhook", "code": 10015}`)
		return
	}
	now := d.Now()
	d.mu.Lock()
	if !now.Before(d.reset) {
		d.used, d.reset = 0, now.Add(d.Window)
	}
	if d.used >= d.Limit {
		d.limited++
		retry := d.reset.Sub(now).Seconds()
		d.mu.Unlock()
		d.writeRateLimited(w, retry, false)
		return
	}
	d.mu.Unlock()

	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var p DiscordPayload
	if err := json.Unmarshal(body, &p); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"message": "Cannot send an empty message", "code": 50006}`)
		return
	}
	if p.Content == "" && len(p.Embeds) == 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"message": "Cannot send an empty message", "code": 50006}`)
		return
	}
	if field, msg := CheckDiscord(p); field != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{
			"message": "Invalid Form Body", "code": 50035,
			"errors": map[string]any{field: map[string]any{"_errors": []map[string]string{{"code": "BASE_TYPE_MAX_LENGTH", "message": msg}}}},
		})
		return
	}
	d.mu.Lock()
	d.used++
	remaining := d.Limit - d.used
	resetAfter := d.reset.Sub(now).Seconds()
	d.received = append(d.received, p)
	d.mu.Unlock()
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(d.Limit))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-RateLimit-Reset-After", strconv.FormatFloat(resetAfter, 'f', 3, 64))
	w.Header().Set("X-RateLimit-Bucket", "fakebucket")
	w.WriteHeader(http.StatusNoContent)
}

// CheckDiscord returns the path of the first field of p over one of
// Discord's limits and Discord's message for it; "" when p is within all.
func CheckDiscord(p DiscordPayload) (field, msg string) {
	n := utf8.RuneCountInString
	maxLen := func(k int) string { return fmt.Sprintf("Must be %d or fewer in length.", k) }
	if n(p.Content) > DiscordMaxContent {
		return "content", maxLen(DiscordMaxContent)
	}
	if len(p.Embeds) > DiscordMaxEmbeds {
		return "embeds", maxLen(DiscordMaxEmbeds)
	}
	total := 0
	for i, e := range p.Embeds {
		at := "embeds." + strconv.Itoa(i) + "."
		if n(e.Title) > DiscordMaxTitle {
			return at + "title", maxLen(DiscordMaxTitle)
		}
		if n(e.Description) > DiscordMaxDescription {
			return at + "description", maxLen(DiscordMaxDescription)
		}
		if len(e.Fields) > DiscordMaxFields {
			return at + "fields", maxLen(DiscordMaxFields)
		}
		total += n(e.Title) + n(e.Description)
		for j, f := range e.Fields {
			if n(f.Name) > DiscordMaxFieldName {
				return at + "fields." + strconv.Itoa(j) + ".name", maxLen(DiscordMaxFieldName)
			}
			if n(f.Value) > DiscordMaxFieldValue {
				return at + "fields." + strconv.Itoa(j) + ".value", maxLen(DiscordMaxFieldValue)
			}
			total += n(f.Name) + n(f.Value)
		}
		if e.Footer != nil {
			if n(e.Footer.Text) > DiscordMaxFooter {
				return at + "footer.text", maxLen(DiscordMaxFooter)
			}
			total += n(e.Footer.Text)
		}
		if e.Author != nil {
			if n(e.Author.Name) > DiscordMaxAuthor {
				return at + "author.name", maxLen(DiscordMaxAuthor)
			}
			total += n(e.Author.Name)
		}
		if e.URL != "" {
			if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || strings.ContainsAny(e.URL, "<>| \"") {
				return at + "url", "Not a well formed URL."
			}
		}
		if e.Timestamp != "" {
			if _, err := time.Parse(time.RFC3339, e.Timestamp); err != nil {
				return at + "timestamp", "Could not parse " + e.Timestamp + ". Should be ISO8601."
			}
		}
	}
	if total > DiscordMaxTotal {
		return "embeds", fmt.Sprintf("Embed size exceeds maximum size of %d", DiscordMaxTotal)
	}
	return "", ""
}
