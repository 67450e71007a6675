// Package discord renders a channel.Message as Discord embeds and posts it
// to a Discord webhook.
//
// One embed per job: the title links to the posting; the description
// holds the company, location and workplace, salary, visa codes (or
// "Sponsorship not stated") and seniority; the timestamp is the posting
// time, which Discord shows in the reader's own zone. The heading is the
// first message's content; the "and N more" link and the manage and
// unsubscribe links close the last message in a small embed of their own. A message carries at most 10
// embeds and 6,000 characters of embed text, so further jobs go in
// follow-up messages. Mentions are never parsed: a job titled "@everyone"
// pings nobody.
package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/hook"
	"github.com/jobalert/jobalert/webhook"
)

// Discord's documented limits (discord.com/developers/docs/resources/message#embed-object-embed-limits).
const (
	MaxEmbeds      = 10
	MaxTitle       = 256
	MaxDescription = 4096
	MaxFieldValue  = 1024
	MaxFooter      = 2048
	MaxTotal       = 6000 // characters of all embeds of one message
	MaxContent     = 2000
	// DefaultMaxJobs is how many jobs Render lists when maxJobs is 0, as
	// the email digest does.
	DefaultMaxJobs = 25
	maxDescription = 900 // ours, so that several embeds fit in MaxTotal
	color          = 0x2EB67D
	tailColor      = 0x4E5058
)

// Embed is a Discord embed object (the fields used here).
type Embed struct {
	Title       string  `json:"title,omitempty"`
	URL         string  `json:"url,omitempty"`
	Description string  `json:"description,omitempty"`
	Color       int     `json:"color,omitempty"`
	Timestamp   string  `json:"timestamp,omitempty"`
	Footer      *Footer `json:"footer,omitempty"`
}

// Footer is an embed's footer.
type Footer struct {
	Text string `json:"text"`
}

// AllowedMentions says which mentions Discord may turn into pings.
type AllowedMentions struct {
	Parse []string `json:"parse"`
}

// Payload is the JSON a webhook execution takes.
type Payload struct {
	Content         string          `json:"content,omitempty"`
	Embeds          []Embed         `json:"embeds,omitempty"`
	AllowedMentions AllowedMentions `json:"allowed_mentions"`
}

// size is what Discord counts against MaxTotal.
func (e Embed) size() int {
	n := utf8.RuneCountInString(e.Title) + utf8.RuneCountInString(e.Description)
	if e.Footer != nil {
		n += utf8.RuneCountInString(e.Footer.Text)
	}
	return n
}

// Render builds the messages for m: at most 10 embeds and 6,000
// characters of embed text each. maxJobs <= 0 means DefaultMaxJobs; jobs
// past it are counted in "and N more". An invalid message is an error
// (channel.Message.Validate).
func Render(m channel.Message, maxJobs int) ([]Payload, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if maxJobs <= 0 {
		maxJobs = DefaultMaxJobs
	}
	m = m.Limit(maxJobs)
	var tail []string
	if m.More > 0 {
		more := fmt.Sprintf("…and **%d more**", m.More)
		if u := m.MoreLink(); u != "" {
			more += " · " + maskedLink("see them all", u)
		}
		tail = append(tail, more)
	}
	tail = append(tail, maskedLink("Manage this alert", m.ManageURL)+" · "+maskedLink("Unsubscribe", m.UnsubscribeURL))
	embeds := make([]Embed, 0, len(m.Jobs)+1)
	for _, j := range m.Jobs {
		embeds = append(embeds, embed(j))
	}
	// The links close the list, as a last small embed: Discord shows a
	// message's content above its embeds, and embeds hold masked links.
	embeds = append(embeds, Embed{Description: channel.Truncate(strings.Join(tail, "\n"), maxDescription), Color: tailColor})
	var out []Payload
	cur := Payload{Content: "**" + escape(channel.Truncate(m.Heading(), 300)) + "**"}
	total := 0
	for _, e := range embeds {
		if len(cur.Embeds) == MaxEmbeds || total+e.size() > MaxTotal {
			out = append(out, cur)
			cur, total = Payload{}, 0
		}
		cur.Embeds = append(cur.Embeds, e)
		total += e.size()
	}
	out = append(out, cur)
	for i := range out {
		out[i].AllowedMentions = AllowedMentions{Parse: []string{}}
		out[i].Content = channel.Truncate(out[i].Content, MaxContent)
	}
	return out, nil
}

// maskedLink writes [text](<url>); the angle brackets keep Discord from
// adding a preview. A URL that cannot be linked leaves the text alone.
func maskedLink(text, u string) string {
	if u == "" || strings.ContainsAny(u, "<> )") || utf8.RuneCountInString(u) > 512 {
		return text
	}
	return "[" + text + "](<" + u + ">)"
}

func embed(j channel.Job) Embed {
	e := Embed{Title: channel.Truncate(j.Title, MaxTitle), Color: color}
	if u := channel.SafeURL(j.URL); u != "" && utf8.RuneCountInString(u) <= 2048 {
		e.URL = u
	}
	var lines []string
	line := []string{}
	if j.Company != "" {
		line = append(line, "**"+escape(channel.Truncate(j.Company, 150))+"**")
	}
	if w := j.Where(); w != "" {
		line = append(line, escape(channel.Truncate(w, 300)))
	}
	if len(line) > 0 {
		lines = append(lines, strings.Join(line, " · "))
	}
	line = nil
	if j.Salary != "" {
		line = append(line, escape(channel.Truncate(j.Salary, 80)))
	}
	if j.Seniority != "" {
		line = append(line, escape(channel.Truncate(j.Seniority, 40)))
	}
	if len(line) > 0 {
		lines = append(lines, strings.Join(line, " · "))
	}
	if j.SponsorshipUnknown() {
		lines = append(lines, "*"+channel.SponsorshipNotStated+"*")
	} else {
		lines = append(lines, "Visa: "+escape(channel.Truncate(j.Visas(), 200)))
	}
	e.Description = channel.Truncate(strings.Join(lines, "\n"), maxDescription)
	if !j.PostedAt.IsZero() {
		e.Timestamp = j.PostedAt.UTC().Format(time.RFC3339)
		e.Footer = &Footer{Text: "Posted"}
	}
	return e
}

// escape puts a backslash before Discord's inline markdown characters,
// so a name with * or _ shows as typed. (The characters that matter only
// at the start of a line, such as # and >, never start one here.)
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\*_~`|[]", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ErrInvalidURL is wrapped by ValidateURL's errors.
var ErrInvalidURL = errors.New("invalid Discord webhook URL")

// ValidateURL checks a webhook URL a subscriber pasted: https on
// discord.com or discordapp.com (or their ptb. and canary. hosts, which
// Discord's test clients hand out) under /api/webhooks/<id>/<token>. With
// allowPrivate any host is accepted within webhook.ValidateURL's rules.
func ValidateURL(raw string, allowPrivate bool) error {
	if err := webhook.ValidateURL(raw, allowPrivate); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if allowPrivate {
		return nil
	}
	u, _ := url.Parse(raw) // parsed by webhook.ValidateURL
	host := strings.ToLower(u.Hostname())
	host = strings.TrimPrefix(strings.TrimPrefix(host, "ptb."), "canary.")
	if (host != "discord.com" && host != "discordapp.com") || (u.Port() != "" && u.Port() != "443") {
		return fmt.Errorf("%w: the host must be discord.com or discordapp.com (Server Settings → Integrations → Webhooks → Copy Webhook URL)", ErrInvalidURL)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if !strings.HasPrefix(u.Path, "/api/webhooks/") || len(parts) != 4 || parts[2] == "" || parts[3] == "" {
		return fmt.Errorf("%w: the path must be /api/webhooks/<id>/<token>", ErrInvalidURL)
	}
	return nil
}

// Sender posts payloads to Discord webhooks.
type Sender struct {
	c   *hook.Client
	now func() time.Time
}

// NewSender returns a Sender posting through c; now (nil: time.Now) reads
// Retry-After dates.
func NewSender(c *hook.Client, now func() time.Time) *Sender {
	if now == nil {
		now = time.Now
	}
	return &Sender{c: c, now: now}
}

// Send posts the payloads in order and returns how many were accepted, so
// that a retry resumes after them. When an answer says
// X-RateLimit-Remaining: 0, the webhook is held for
// X-RateLimit-Reset-After (hook.Limits): the next message, of this alert
// or the next, waits that long first; a 429 is retried after the body's retry_after (seconds,
// fractions allowed) or Retry-After within the client's bounds; 404 and
// 401 (a deleted webhook or token) are channel.ErrGone; other 4xx
// channel.ErrPermanent; 5xx and network errors a *channel.TemporaryError.
func (s *Sender) Send(ctx context.Context, webhookURL string, payloads []Payload) (sent int, err error) {
	return hook.PostEach(ctx, s.c, "discord", webhookURL, payloads, s.judge, func(a hook.Answer) error {
		if strings.TrimSpace(a.Header.Get("X-RateLimit-Remaining")) != "0" {
			return nil
		}
		if d, ok := hook.RetryAfter(a.Header.Get("X-RateLimit-Reset-After"), s.now()); ok && d > 0 {
			return s.c.Hold(ctx, webhookURL, d)
		}
		return nil
	})
}

// rateLimit is Discord's 429 body.
type rateLimit struct {
	Message    string  `json:"message"`
	RetryAfter float64 `json:"retry_after"`
	Global     bool    `json:"global"`
}

func (s *Sender) judge(a hook.Answer) hook.Verdict {
	switch {
	case a.Status >= 200 && a.Status < 300:
		return hook.Verdict{}
	case a.Status == 429:
		var rl rateLimit
		d := time.Duration(0)
		if json.Unmarshal(a.Body, &rl) == nil && rl.RetryAfter > 0 {
			d = time.Duration(rl.RetryAfter * float64(time.Second))
		} else if h, ok := hook.RetryAfter(a.Header.Get("Retry-After"), s.now()); ok {
			d = h
		}
		if d <= 0 {
			d = time.Second
		}
		scope := "bucket"
		if rl.Global {
			scope = "global"
		}
		return hook.Verdict{Err: &channel.TemporaryError{After: d, Err: fmt.Errorf("rate limited (HTTP 429, %s, retry_after %s)", scope, strconv.FormatFloat(d.Seconds(), 'f', -1, 64))}, RetryAfter: d}
	}
	return hook.StatusVerdict(a, a.Status == 404 || a.Status == 401)
}
