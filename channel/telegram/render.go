package telegram

import (
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/jobalert/jobalert/channel"
)

// Telegram's documented limits (core.telegram.org/bots/api#sendmessage).
const (
	// MaxText is the most characters of one message's text. Telegram
	// counts them after parsing the HTML; Render keeps the HTML itself
	// within it, in UTF-16 code units, which is never less.
	MaxText = 4096
	// DefaultMaxJobs is how many jobs Render lists when maxJobs is 0, as
	// the email digest does.
	DefaultMaxJobs = 25
)

// Length is what Render measures a text by: UTF-16 code units, as
// Telegram counts message lengths.
func Length(s string) int { return len(utf16.Encode([]rune(s))) }

func escRune(r rune) string { return channel.HTMLEscape(r) }

// esc escapes s for parse_mode=HTML and cuts it to n characters.
func esc(s string, n int) string { return channel.EscapeTruncate(s, n, escRune) }

// maxHref bounds a link's escaped URL, so that a job's block stays far
// under MaxText whatever its URL holds.
const maxHref = 1024

// href escapes a URL for an href attribute; a URL too long to link,
// escaped, is "".
func href(u string) string {
	if u == "" || len(u) > 6*maxHref {
		return ""
	}
	h := strings.ReplaceAll(esc(u, 6*maxHref), `"`, "&quot;")
	if Length(h) > maxHref {
		return ""
	}
	return h
}

func link(u, text string) string {
	if h := href(u); h != "" {
		return `<a href="` + h + `">` + text + "</a>"
	}
	return text
}

// Render builds the texts (parse_mode=HTML) of the messages for m: the
// heading in bold, then one block per job (the title as a bold link;
// company, location and workplace; salary, visa codes or "Sponsorship not
// stated" in italics, seniority and posting date), then "and N more" and
// the manage and unsubscribe links. A text longer than MaxText is split
// between jobs, never inside one. maxJobs <= 0 means DefaultMaxJobs.
func Render(m channel.Message, maxJobs int) ([]string, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if maxJobs <= 0 {
		maxJobs = DefaultMaxJobs
	}
	m = m.Limit(maxJobs)
	var footer []string
	if m.More > 0 {
		more := fmt.Sprintf("…and <b>%d more</b>", m.More)
		if u := m.MoreLink(); u != "" {
			more += " · " + link(u, "see them all")
		}
		footer = append(footer, more)
	}
	footer = append(footer, link(m.ManageURL, "Manage this alert")+" · "+link(m.UnsubscribeURL, "Unsubscribe"))
	tail := strings.Join(footer, "\n")

	var out []string
	cur := "<b>" + esc(m.Heading(), 300) + "</b>"
	for _, j := range m.Jobs {
		block := jobBlock(j)
		if Length(cur)+2+Length(block) > MaxText {
			out = append(out, cur)
			cur = block
			continue
		}
		cur += "\n\n" + block
	}
	if Length(cur)+2+Length(tail) > MaxText {
		out = append(out, cur)
		cur = tail
	} else {
		cur += "\n\n" + tail
	}
	return append(out, cur), nil
}

// jobBlock is one job: at most about 1,600 characters whatever the job
// holds, so any block fits a message.
func jobBlock(j channel.Job) string {
	lines := []string{"<b>" + link(j.URL, esc(j.Title, 200)) + "</b>"}
	l := []string{}
	if j.Company != "" {
		l = append(l, esc(j.Company, 150))
	}
	if w := j.Where(); w != "" {
		l = append(l, esc(w, 300))
	}
	if len(l) > 0 {
		lines = append(lines, strings.Join(l, " · "))
	}
	l = j.Facts(esc, func(s string) string { return "<i>" + s + "</i>" })
	lines = append(lines, strings.Join(l, " · "))
	return strings.Join(lines, "\n")
}
