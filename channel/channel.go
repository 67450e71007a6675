// Package channel is the model of what a chat channel (Slack, Discord,
// Telegram) or the private feed carries to a subscriber, independent of
// email: a Message with the subscription's jobs, newest first, how many
// more matched than it lists, and the manage and unsubscribe links. It
// also names the outcomes every channel's sender reports: ErrGone (the
// destination was deleted or blocked the bot: disable the channel),
// ErrPermanent (this message will never be accepted) and *TemporaryError
// (try again later, after the time the service asked for when it said).
//
// The packages beneath it render a Message for one service each, with a
// pure function a table test checks against the service's documented
// limits, and send it. The notifier reaches them through its Chat and
// Feed interfaces, which cmd/jobalert implements (docs/channels.md).
package channel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/jobalert/jobalert/internal/clock"
	"github.com/jobalert/jobalert/matcher"
)

// SponsorshipNotStated is the label a job without visa codes carries: the
// posting says nothing about sponsorship, which is not the same as "no".
const SponsorshipNotStated = "Sponsorship not stated"

// Job is one job as a chat shows it: display strings, already formatted.
type Job struct {
	ID        string
	Title     string
	URL       string // http(s), or empty
	Company   string
	Locations []string
	Workplace string // Remote, Hybrid, On-site or empty
	Salary    string // formatted for people, e.g. "$115,000–$160,000 a year"; empty when unknown
	VisaCodes []string
	Seniority string // e.g. "Senior"; empty when unknown
	PostedAt  time.Time
}

// SponsorshipUnknown reports whether the job says nothing about visa
// sponsorship; chats then show SponsorshipNotStated.
func (j Job) SponsorshipUnknown() bool { return len(j.VisaCodes) == 0 }

// Visas returns the visa codes joined for people, or SponsorshipNotStated.
func (j Job) Visas() string {
	if j.SponsorshipUnknown() {
		return SponsorshipNotStated
	}
	return strings.Join(j.VisaCodes, ", ")
}

// Where returns the locations and the workplace in one phrase, e.g.
// "Seattle, WA, US; Austin, TX · Hybrid"; empty when neither is known.
func (j Job) Where() string {
	parts := []string{}
	var locs []string
	for _, l := range j.Locations {
		if l = strings.TrimSpace(l); l != "" {
			locs = append(locs, l)
		}
	}
	if l := strings.Join(locs, "; "); l != "" {
		parts = append(parts, l)
	}
	if j.Workplace != "" {
		parts = append(parts, j.Workplace)
	}
	return strings.Join(parts, " · ")
}

// Posted returns the posting date as "Posted Dec 5" (UTC), or "" when
// unknown.
func (j Job) Posted() string {
	if j.PostedAt.IsZero() {
		return ""
	}
	return "Posted " + j.PostedAt.UTC().Format("Jan 2")
}

// FromMatcher builds a Job from the pipeline's job. salary is the pay range
// already formatted for people (notifier.FormatSalary's output; the wiring
// phase passes it, so that email and chats print the same figures), empty
// when unknown. Blank locations and repeated visa codes are dropped, a
// URL that is not http(s) is left out, and the workplace and seniority are
// given their display names.
func FromMatcher(j *matcher.Job, salary string) Job {
	out := Job{
		ID:        j.ID,
		Title:     strings.TrimSpace(j.Title),
		Company:   strings.TrimSpace(j.Company),
		Salary:    salary,
		Workplace: matcher.WorkplaceLabel(j.Workplace),
		Seniority: capitalise(strings.TrimSpace(j.Seniority)),
		PostedAt:  j.PostedAt,
	}
	out.URL = SafeURL(j.URL)
	for _, l := range j.Locations {
		if l = strings.TrimSpace(l); l != "" {
			out.Locations = append(out.Locations, l)
		}
	}
	seen := map[string]bool{}
	for _, v := range j.VisaTypes {
		v = strings.TrimSpace(v)
		if v != "" && !seen[strings.ToLower(v)] {
			seen[strings.ToLower(v)] = true
			out.VisaCodes = append(out.VisaCodes, v)
		}
	}
	return out
}

// urlEscaper percent-encodes the characters that are not allowed raw in a
// URL and that chat markups use as delimiters.
var urlEscaper = strings.NewReplacer("<", "%3C", ">", "%3E", "|", "%7C", `"`, "%22", " ", "%20", "`", "%60", "{", "%7B", "}", "%7D", "\\", "%5C", "^", "%5E")

// SafeURL returns an http(s) URL with the characters that a URL may not
// hold raw (and that Slack, Discord and Telegram markup use as
// delimiters) percent-encoded, or "" for anything else.
func SafeURL(u string) string {
	u = strings.TrimSpace(u)
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return ""
	}
	return urlEscaper.Replace(u)
}

func capitalise(s string) string {
	for i, r := range s {
		return string(unicode.ToUpper(r)) + s[i+len(string(r)):]
	}
	return s
}

// Kind is what a Message is.
type Kind uint8

// The kinds of message.
const (
	// Alert is an instant alert or a daily or weekly digest: Jobs lists
	// the matches, newest first.
	Alert Kind = iota
	// CapRollup is the one message that follows a day on which an instant
	// subscription reached its max_alerts_per_day: More counts the matches
	// held back, Jobs may list the newest of them.
	CapRollup
)

// Message is one alert for one subscription, as every chat channel and
// the feed receive it.
type Message struct {
	Kind      Kind
	Frequency string // instant, daily or weekly
	Filter    matcher.Filter
	Jobs      []Job // newest first
	// More counts matches not in Jobs ("and N more").
	More int
	// ManageURL and UnsubscribeURL are the message's "Manage this alert"
	// and "Unsubscribe" links: in the service, the chat's own pages,
	// which show no address and can only stop the posting there (a chat
	// may be shared); MoreURL is where "and N more" points (ManageURL
	// when empty).
	ManageURL, UnsubscribeURL, MoreURL string
}

// Total is the number of matches the message stands for.
func (m Message) Total() int { return len(m.Jobs) + m.More }

// Heading is the message's first line, e.g. `3 new "backend engineer"
// jobs sponsoring H-1B` or, for a CapRollup, `12 more "backend engineer"
// jobs matched after your daily limit`.
func (m Message) Heading() string {
	noun := "jobs"
	if m.Total() == 1 {
		noun = "job"
	}
	s := matcher.SummaryWithNoun(m.Filter, noun)
	if m.Kind == CapRollup {
		return fmt.Sprintf("%d more %s matched after your daily limit", m.Total(), s)
	}
	return fmt.Sprintf("%d new %s", m.Total(), s)
}

// MoreLink is where "and N more" points: MoreURL, else ManageURL.
func (m Message) MoreLink() string {
	if m.MoreURL != "" {
		return m.MoreURL
	}
	return m.ManageURL
}

// Limit returns m listing at most max jobs, the rest added to More; max
// <= 0 leaves m as it is.
func (m Message) Limit(max int) Message {
	if max > 0 && len(m.Jobs) > max {
		m.More += len(m.Jobs) - max
		m.Jobs = m.Jobs[:max]
	}
	return m
}

// Validate reports a message no channel can send: without jobs and
// without a count, or without its manage and unsubscribe links.
func (m Message) Validate() error {
	if m.Total() == 0 {
		return fmt.Errorf("%w: a message needs at least one job or a count of more", ErrEmpty)
	}
	if m.ManageURL == "" || m.UnsubscribeURL == "" {
		return errors.New("channel: a message needs its manage and unsubscribe URLs")
	}
	return nil
}

// ErrEmpty is wrapped by Validate's error for a message with nothing to
// say: nothing is sent when nothing matched.
var ErrEmpty = errors.New("channel: empty message")

// ErrGone is wrapped by a sender's error when the destination no longer
// exists or refuses the service for good (a deleted Slack or Discord
// webhook, a Telegram user who blocked the bot): the channel must be
// disabled and its owner told, and nothing retried.
var ErrGone = errors.New("channel gone")

// ErrPermanent is wrapped by a sender's error when the service refused
// this message for a reason a retry will not change (a 4xx other than
// gone and rate limits): dead-letter it, keep the channel.
var ErrPermanent = errors.New("permanent channel failure")

// TemporaryError is a failure worth retrying later: a 5xx, a network
// error, or a rate limit that asks for a longer wait than the sender
// waits itself. After is the wait the service asked for; 0 means the
// caller's own backoff.
type TemporaryError struct {
	After time.Duration
	Err   error
}

func (e *TemporaryError) Error() string {
	if e.After > 0 {
		return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
	}
	return e.Err.Error()
}

func (e *TemporaryError) Unwrap() error { return e.Err }

// Sleep waits d or until ctx is done; senders take one so that tests
// record the waits a rate limit asks for instead of waiting.
type Sleep func(ctx context.Context, d time.Duration) error

// RealSleep waits d on a timer; it returns ctx.Err() when ctx ends first
// (clock.Sleep).
func RealSleep(ctx context.Context, d time.Duration) error { return clock.Sleep(ctx, d) }

// Truncate cuts s to at most n runes, marking a cut with "…". It never
// splits a rune.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n { // bytes >= runes
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimRightFunc(string(r[:n-1]), unicode.IsSpace) + "…"
}

// Escaper writes text for a markup language: the entities a chat's
// formatting needs. EscapeTruncate uses it to cut escaped text without
// splitting an entity.
type Escaper func(r rune) string

// EscapeTruncate escapes s rune by rune with esc and stops before the
// escaped text would pass n runes, ending a cut with "…"; an entity is
// never split.
func EscapeTruncate(s string, n int, esc Escaper) string {
	var b strings.Builder
	size := 0
	total := 0
	for _, r := range s {
		total += len([]rune(esc(r)))
	}
	if total <= n {
		for _, r := range s {
			b.WriteString(esc(r))
		}
		return b.String()
	}
	for _, r := range s {
		e := esc(r)
		k := len([]rune(e))
		if size+k > n-1 {
			break
		}
		b.WriteString(e)
		size += k
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace) + "…"
}

// HTMLEscape is the Escaper of Slack's mrkdwn and Telegram's HTML: `&`,
// `<` and `>` become entities (Slack documents exactly these three;
// Telegram needs them and accepts `&quot;` for a double quote, which
// matters inside an href).
func HTMLEscape(r rune) string {
	switch r {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	}
	return string(r)
}

// Facts returns the job's salary, visas (or SponsorshipNotStated, marked by
// em), seniority and posting date, in the order chats show them on one
// line, each escaped by esc (value, most characters kept) for the target
// markup.
func (j Job) Facts(esc func(s string, max int) string, em func(string) string) []string {
	var out []string
	if j.Salary != "" {
		out = append(out, esc(j.Salary, 80))
	}
	if j.SponsorshipUnknown() {
		out = append(out, em(SponsorshipNotStated))
	} else {
		out = append(out, "Visa: "+esc(j.Visas(), 200))
	}
	if j.Seniority != "" {
		out = append(out, esc(j.Seniority, 40))
	}
	if p := j.Posted(); p != "" {
		out = append(out, p)
	}
	return out
}
