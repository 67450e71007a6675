// Package slack renders a channel.Message as Slack Block Kit and posts it
// to a Slack incoming webhook (or a Slack-compatible one such as
// Mattermost's, with AllowPrivate).
//
// A message is what a Slack user expects from an alert bot: one post per
// alert, a header with the count and the filter, one section per job (the
// title as a link; company, location and workplace; salary, visa codes or
// "Sponsorship not stated", seniority, posting date), an "and N more" line
// linking to the full list, and a context line with the manage and
// unsubscribe links. Render lists at most MaxJobs (default 25, as the
// email digest does); a larger MaxJobs is split into several posts of at
// most JobsPerPost jobs, each within Slack's limits: 50 blocks a message,
// 3,000 characters a text field, 150 a header.
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/channel/hook"
	"github.com/jobalert/jobalert/webhook"
)

// Slack's documented limits (api.slack.com/reference/block-kit).
const (
	MaxBlocks      = 50   // blocks in one message
	MaxText        = 3000 // characters of a section's or context element's text
	MaxHeader      = 150  // characters of a header's plain_text
	MaxContextElts = 10   // elements of a context block
	// JobsPerPost is the most job sections one post carries: the rest of
	// the 50 blocks are the header, the "and N more" line and the context.
	JobsPerPost = 40
	// DefaultMaxJobs is how many jobs Render lists when MaxJobs is 0.
	DefaultMaxJobs = 25
	maxURL         = 1500 // a job URL longer than this, escaped, is not linked
)

// Text is a Block Kit text object.
type Text struct {
	Type  string `json:"type"` // plain_text | mrkdwn
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// Block is a Block Kit layout block: header, section, context or divider.
type Block struct {
	Type     string  `json:"type"`
	Text     *Text   `json:"text,omitempty"`
	Elements []*Text `json:"elements,omitempty"`
}

// Payload is the JSON an incoming webhook takes. Text is the notification
// fallback; link unfurling is off, or each job link would grow a preview.
type Payload struct {
	Text        string  `json:"text"`
	Blocks      []Block `json:"blocks"`
	UnfurlLinks bool    `json:"unfurl_links"`
	UnfurlMedia bool    `json:"unfurl_media"`
}

// Render builds the posts for m: one for up to JobsPerPost listed jobs,
// more for a larger maxJobs. maxJobs <= 0 means DefaultMaxJobs; jobs past
// it are counted in "and N more". An invalid message is an error
// (channel.Message.Validate).
func Render(m channel.Message, maxJobs int) ([]Payload, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if maxJobs <= 0 {
		maxJobs = DefaultMaxJobs
	}
	m = m.Limit(maxJobs)
	heading := m.Heading()
	chunks := [][]channel.Job{}
	for jobs := m.Jobs; len(jobs) > 0; {
		n := min(len(jobs), JobsPerPost)
		chunks = append(chunks, jobs[:n])
		jobs = jobs[n:]
	}
	if len(chunks) == 0 {
		chunks = append(chunks, nil) // a rollup with a count only
	}
	var out []Payload
	for i, jobs := range chunks {
		h := heading
		if len(chunks) > 1 {
			h = fmt.Sprintf("%s (%d/%d)", heading, i+1, len(chunks))
		}
		p := Payload{Text: esc(h, MaxText)}
		p.Blocks = append(p.Blocks, Block{Type: "header", Text: &Text{Type: "plain_text", Text: channel.Truncate(h, MaxHeader), Emoji: true}})
		for _, j := range jobs {
			p.Blocks = append(p.Blocks, Block{Type: "section", Text: &Text{Type: "mrkdwn", Text: jobText(j)}})
		}
		if i == len(chunks)-1 {
			if m.More > 0 {
				more := fmt.Sprintf("…and *%d more*", m.More)
				if u := link(m.MoreLink(), "see them all"); u != "" {
					more += " · " + u
				}
				p.Blocks = append(p.Blocks, Block{Type: "section", Text: &Text{Type: "mrkdwn", Text: more}})
			}
			p.Blocks = append(p.Blocks, Block{Type: "context", Elements: []*Text{
				{Type: "mrkdwn", Text: link(m.ManageURL, "Manage this alert") + " · " + link(m.UnsubscribeURL, "Unsubscribe")},
			}})
		}
		out = append(out, p)
	}
	return out, nil
}

func escRune(r rune) string { return channel.HTMLEscape(r) }

// esc escapes s for mrkdwn and cuts it to n characters.
func esc(s string, n int) string { return channel.EscapeTruncate(s, n, escRune) }

// link writes <url|text>, or text alone for a URL that cannot be linked.
// A | in the URL would end it: it is percent-encoded; a | in the text is
// shown as a broken bar, since mrkdwn has no escape for it.
func link(u, text string) string {
	text = esc(strings.ReplaceAll(text, "|", "¦"), 300)
	if u == "" || len(u) > 5*maxURL {
		return text
	}
	// Escaped, a URL can grow fivefold (& is &amp;): the bound is on
	// what goes into the text.
	eu := esc(strings.ReplaceAll(u, "|", "%7C"), 5*maxURL)
	if utf8.RuneCountInString(eu) > maxURL {
		return text
	}
	return "<" + eu + "|" + text + ">"
}

// jobText is a job's section: at most about 2,100 characters whatever
// the job holds, under MaxText.
func jobText(j channel.Job) string {
	var b strings.Builder
	b.WriteString("*" + link(j.URL, channel.Truncate(j.Title, 200)) + "*")
	line2 := []string{}
	if j.Company != "" {
		line2 = append(line2, esc(j.Company, 150))
	}
	if w := j.Where(); w != "" {
		line2 = append(line2, esc(w, 300))
	}
	if len(line2) > 0 {
		b.WriteString("\n" + strings.Join(line2, " · "))
	}
	line3 := j.Facts(esc, func(s string) string { return "_" + s + "_" })
	b.WriteString("\n" + strings.Join(line3, " · "))
	return b.String()
}

// ErrInvalidURL is wrapped by ValidateURL's errors.
var ErrInvalidURL = errors.New("invalid Slack webhook URL")

// ValidateURL checks an incoming-webhook URL a subscriber pasted: https on
// hooks.slack.com under /services/, as Slack hands them out. With
// allowPrivate (JOBALERT_WEBHOOK_ALLOW_PRIVATE=true) any host is accepted,
// for tests and Slack-compatible self-hosted chats such as Mattermost,
// within webhook.ValidateURL's rules. The error says what is wrong.
func ValidateURL(raw string, allowPrivate bool) error {
	if err := webhook.ValidateURL(raw, allowPrivate); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if allowPrivate {
		return nil
	}
	u, _ := url.Parse(raw) // parsed by webhook.ValidateURL
	if !strings.EqualFold(u.Hostname(), "hooks.slack.com") || (u.Port() != "" && u.Port() != "443") {
		return fmt.Errorf("%w: the host must be hooks.slack.com (Slack → Apps → Incoming Webhooks gives such a URL)", ErrInvalidURL)
	}
	if !strings.HasPrefix(u.Path, "/services/") || len(strings.Split(strings.Trim(u.Path, "/"), "/")) < 4 {
		return fmt.Errorf("%w: the path must look like /services/T…/B…/…", ErrInvalidURL)
	}
	return nil
}

// goneAnswers are the error bodies with which Slack says a webhook is no
// more, whatever the status (api.slack.com/messaging/webhooks#handling_errors).
var goneAnswers = map[string]bool{
	"no_service": true, "no_service_id": true, "channel_not_found": true,
	"channel_is_archived": true, "team_disabled": true, "invalid_token": true,
}

// Sender posts payloads to incoming webhooks.
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
// that a retry resumes after them instead of posting them twice. A 429 is
// retried after its Retry-After (1 s when absent) within the client's
// bounds; 404, 410 and Slack's "no_service"-style answers are
// channel.ErrGone; other 4xx channel.ErrPermanent; 5xx and network errors
// a *channel.TemporaryError.
func (s *Sender) Send(ctx context.Context, webhookURL string, payloads []Payload) (sent int, err error) {
	return hook.PostEach(ctx, s.c, "slack", webhookURL, payloads, s.judge, nil)
}

func (s *Sender) judge(a hook.Answer) hook.Verdict {
	answer := strings.TrimSpace(string(a.Body))
	switch {
	case a.Status >= 200 && a.Status < 300:
		return hook.Verdict{}
	case a.Status == 429:
		d, ok := hook.RetryAfter(a.Header.Get("Retry-After"), s.now())
		if !ok || d <= 0 {
			d = time.Second
		}
		return hook.Verdict{Err: &channel.TemporaryError{After: d, Err: fmt.Errorf("rate limited (HTTP 429 %s)", hook.Excerpt(a.Body))}, RetryAfter: d}
	}
	return hook.StatusVerdict(a, a.Status == 404 || a.Status == 410 || goneAnswers[answer])
}
