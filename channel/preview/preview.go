// Package preview draws rendered chat messages (Slack blocks, Discord
// embeds, Telegram HTML) as small HTML pages that look roughly as each
// client shows them: for the screenshots in docs/channels.md, and for a
// preview on the manage page in a later phase. The pages are mock-ups,
// not the clients' own rendering.
package preview

import (
	"fmt"
	"html"
	"regexp"
	"strings"

	"github.com/jobalert/jobalert/channel/discord"
	"github.com/jobalert/jobalert/channel/slack"
)

const page = `<!doctype html><html><head><meta charset="utf-8"><title>%s</title><style>
body{margin:0;font:15px/1.46 -apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Color Emoji",sans-serif}
a{text-decoration:none}
.slack{background:#fff;color:#1d1c1d;padding:16px 20px;max-width:760px}
.slack .who{display:flex;gap:8px;align-items:baseline;margin-bottom:4px}
.slack .avatar{width:36px;height:36px;border-radius:6px;background:#2eb67d;color:#fff;font-weight:700;display:flex;align-items:center;justify-content:center;float:left;margin-right:8px}
.slack .name{font-weight:900}.slack .app{font-size:10px;background:#e8e8e8;border-radius:2px;padding:0 3px;color:#616061}
.slack .time{font-size:12px;color:#616061}
.slack .msg{margin-left:44px}
.slack h3{font-size:18px;margin:6px 0 8px}
.slack .section{margin:10px 0}.slack a{color:#1264a3}
.slack .context{font-size:12px;color:#616061;margin-top:10px}
.discord{background:#313338;color:#dbdee1;padding:16px 20px;max-width:760px}
.discord .avatar{width:40px;height:40px;border-radius:50%%;background:#2eb67d;float:left;margin-right:14px}
.discord .name{color:#f2f3f5;font-weight:600}.discord .bot{font-size:10px;background:#5865f2;color:#fff;border-radius:3px;padding:1px 4px;margin-left:4px}
.discord .msg{margin-left:54px}.discord a{color:#00a8fc}
.discord .embed{background:#2b2d31;border-left:4px solid #2eb67d;border-radius:4px;padding:8px 16px 12px 12px;margin:6px 0;max-width:520px}
.discord .embed .title{font-weight:600;color:#00a8fc;margin:4px 0}
.discord .embed .footer{font-size:12px;color:#b5bac1;margin-top:6px}
.telegram{background:#8fb98b;padding:20px;max-width:560px}
.telegram .bubble{background:#fff;border-radius:12px 12px 12px 4px;padding:8px 12px;margin:6px 0;white-space:pre-wrap;color:#000;box-shadow:0 1px 1px rgba(0,0,0,.15)}
.telegram a{color:#168acd}.telegram .head{color:#fff;font-weight:600;margin-bottom:8px}
</style></head><body>%s</body></html>`

var (
	slackLink = regexp.MustCompile(`<([^<>|]+)\|([^<>]*)>`)
	bold      = regexp.MustCompile(`\*([^*\n]+)\*`)
	italic    = regexp.MustCompile(`(^|[\s(])_([^_\n]+)_`)
	dBold     = regexp.MustCompile(`\*\*(.+?)\*\*`)
	dItalic   = regexp.MustCompile(`(^|[^\\*])\*([^*\n]+?)\*`)
	dLink     = regexp.MustCompile(`\[([^\]]+)\]\(&lt;([^ ]+?)&gt;\)`)
	dEscape   = regexp.MustCompile(`\\([\\*_~` + "`" + `|\[\]])`)
)

// mrkdwn turns Slack mrkdwn (already HTML-safe: Slack's escapes are
// HTML's) into HTML.
func mrkdwn(s string) string {
	s = slackLink.ReplaceAllString(s, `<a href="$1">$2</a>`)
	s = bold.ReplaceAllString(s, `<b>$1</b>`)
	s = italic.ReplaceAllString(s, `$1<i>$2</i>`)
	return strings.ReplaceAll(s, "\n", "<br>")
}

// Slack draws posts as Slack's desktop client shows them.
func Slack(posts []slack.Payload) string {
	var b strings.Builder
	b.WriteString(`<div class="slack"><div class="avatar">ja</div><div class="who"><span class="name">jobalert</span><span class="app">APP</span><span class="time">8:00 AM</span></div><div class="msg">`)
	for _, p := range posts {
		for _, bl := range p.Blocks {
			switch bl.Type {
			case "header":
				fmt.Fprintf(&b, "<h3>%s</h3>", html.EscapeString(bl.Text.Text))
			case "section":
				fmt.Fprintf(&b, `<div class="section">%s</div>`, mrkdwn(bl.Text.Text))
			case "context":
				for _, e := range bl.Elements {
					fmt.Fprintf(&b, `<div class="context">%s</div>`, mrkdwn(e.Text))
				}
			}
		}
	}
	b.WriteString("</div></div>")
	return fmt.Sprintf(page, "Slack", b.String())
}

// discordMarkdown turns the markdown Render writes into HTML.
func discordMarkdown(s string) string {
	s = html.EscapeString(s)
	s = dLink.ReplaceAllString(s, `<a href="$2">$1</a>`)
	s = dBold.ReplaceAllString(s, `<b>$1</b>`)
	s = dItalic.ReplaceAllString(s, `$1<i>$2</i>`)
	s = dEscape.ReplaceAllString(s, `$1`)
	return strings.ReplaceAll(s, "\n", "<br>")
}

// Discord draws messages as Discord's dark theme shows them.
func Discord(msgs []discord.Payload) string {
	var b strings.Builder
	b.WriteString(`<div class="discord"><div class="avatar"></div><div><span class="name">jobalert</span><span class="bot">APP</span></div><div class="msg">`)
	for _, m := range msgs {
		if m.Content != "" {
			fmt.Fprintf(&b, "<div>%s</div>", discordMarkdown(m.Content))
		}
		for _, e := range m.Embeds {
			fmt.Fprintf(&b, `<div class="embed" style="border-left-color:#%06x">`, e.Color)
			fmt.Fprintf(&b, `<div class="title"><a href="%s">%s</a></div>`, html.EscapeString(e.URL), html.EscapeString(e.Title))
			fmt.Fprintf(&b, "<div>%s</div>", discordMarkdown(e.Description))
			if e.Footer != nil {
				fmt.Fprintf(&b, `<div class="footer">%s · %s</div>`, html.EscapeString(e.Footer.Text), html.EscapeString(e.Timestamp[:10]))
			}
			b.WriteString("</div>")
		}
	}
	b.WriteString("</div></div>")
	return fmt.Sprintf(page, "Discord", b.String())
}

// Telegram draws messages (parse_mode=HTML, whose tags are HTML's) as
// chat bubbles.
func Telegram(texts []string) string {
	var b strings.Builder
	b.WriteString(`<div class="telegram"><div class="head">jobalert bot</div>`)
	for _, t := range texts {
		fmt.Fprintf(&b, `<div class="bubble">%s</div>`, t)
	}
	b.WriteString("</div>")
	return fmt.Sprintf(page, "Telegram", b.String())
}
