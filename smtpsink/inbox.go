package smtpsink

import (
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// InboxHandler returns a web inbox over the sink's messages: a list, newest
// first, at "/", a page per message at "/m/{id}" (headers, the HTML part in
// a sandboxed iframe, the text part), the HTML part alone at "/m/{id}/html"
// (served with CSP sandbox) and the raw message at "/m/{id}/raw". Links are
// relative, so the handler can be mounted under a prefix ending in "/":
//
//	mux.Handle("/inbox/", http.StripPrefix("/inbox", sink.InboxHandler()))
func (s *Sink) InboxHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveList)
	mux.HandleFunc("GET /m/{id}", s.serveMessage)
	mux.HandleFunc("GET /m/{id}/html", s.serveHTMLPart)
	mux.HandleFunc("GET /m/{id}/raw", s.serveRaw)
	return mux
}

const pageCSP = "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; img-src 'self' data:; frame-ancestors 'self'; base-uri 'none'; form-action 'none'"

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
}

type listRow struct {
	ID       int
	Subject  string
	To       string
	Received string
	Acked    bool
}

func (s *Sink) serveList(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	rows := make([]listRow, 0, len(s.msgs))
	for _, m := range s.msgs {
		rows = append(rows, listRow{
			ID:       m.ID,
			Subject:  orNone(m.Subject),
			To:       strings.Join(m.To, ", "),
			Received: m.ReceivedAt.Format("2006-01-02 15:04:05"),
			Acked:    m.Acked,
		})
	}
	s.mu.Unlock()
	slices.Reverse(rows)
	setPageHeaders(w)
	if err := inboxTemplates.ExecuteTemplate(w, "list", rows); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
	}
}

type headerRow struct {
	Name   string
	Values []string
}

type messageView struct {
	Message
	Headers []headerRow
}

func (s *Sink) lookup(w http.ResponseWriter, r *http.Request) (Message, bool) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return Message{}, false
	}
	m, ok := s.Message(id)
	if !ok {
		http.NotFound(w, r)
	}
	return m, ok
}

func (s *Sink) serveMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := s.lookup(w, r)
	if !ok {
		return
	}
	v := messageView{Message: m}
	for name, vals := range m.Header {
		v.Headers = append(v.Headers, headerRow{Name: name, Values: vals})
	}
	sort.Slice(v.Headers, func(i, j int) bool { return v.Headers[i].Name < v.Headers[j].Name })
	setPageHeaders(w)
	if err := inboxTemplates.ExecuteTemplate(w, "message", v); err != nil {
		http.Error(w, "render: "+err.Error(), http.StatusInternalServerError)
	}
}

// linkSandbox lets a link in an email open its page: in a new tab
// (allow-popups, escaping the sandbox, so the page works as it does from
// a mail client) or, on a click, in the top window. Scripts, forms and
// same-origin access stay off.
const linkSandbox = "allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"

// baseTarget makes every link in an email's HTML open in a new tab: the
// pages an email links to refuse to be framed (X-Frame-Options: DENY).
const baseTarget = `<base target="_blank">`

// serveHTMLPart serves the message's own HTML. The CSP sandbox directive
// gives it an opaque origin with no scripts, so it cannot reach the inbox
// even when opened outside the iframe; its links open in a new tab.
func (s *Sink) serveHTMLPart(w http.ResponseWriter, r *http.Request) {
	m, ok := s.lookup(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "sandbox "+linkSandbox+"; default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; frame-ancestors 'self'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write([]byte(baseTarget + m.HTML))
}

func (s *Sink) serveRaw(w http.ResponseWriter, r *http.Request) {
	m, ok := s.lookup(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(m.Raw)
}

func orNone(s string) string {
	if s == "" {
		return "(no subject)"
	}
	return s
}

// urlPattern finds the http(s) URLs of a text part.
var urlPattern = regexp.MustCompile(`https?://[^\s<>"]+`)

// linkify escapes text and makes its http(s) URLs links that open in a new
// tab.
func linkify(text string) template.HTML {
	var b strings.Builder
	last := 0
	for _, loc := range urlPattern.FindAllStringIndex(text, -1) {
		u := strings.TrimRight(text[loc[0]:loc[1]], ".,;:!?)")
		end := loc[0] + len(u)
		b.WriteString(template.HTMLEscapeString(text[last:loc[0]]))
		fmt.Fprintf(&b, `<a href="%s" target="_blank" rel="noopener noreferrer">%s</a>`,
			template.HTMLEscapeString(u), template.HTMLEscapeString(u))
		last = end
	}
	b.WriteString(template.HTMLEscapeString(text[last:]))
	return template.HTML(b.String())
}

var inboxTemplates = template.Must(template.New("inbox").Funcs(template.FuncMap{"linkify": linkify}).Parse(`
{{define "head"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} · smtpsink</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1f2328}
header{background:#1f2937;color:#fff;padding:12px 20px}
header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:980px;margin:0 auto;padding:16px}
table{width:100%;border-collapse:collapse;background:#fff;border-radius:6px;overflow:hidden}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{background:#f9fafb;font-weight:600}
td a{color:#0b57d0;text-decoration:none}
.muted{color:#6b7280}
.warn{display:inline-block;background:#fef3c7;color:#92400e;border-radius:4px;padding:0 6px;font-size:12px}
.card{background:#fff;border-radius:6px;padding:12px 16px;margin:12px 0}
iframe{width:100%;height:70vh;border:1px solid #e5e7eb;border-radius:6px;background:#fff}
pre{white-space:pre-wrap;word-break:break-word;font:13px/1.45 ui-monospace,Menlo,Consolas,monospace;margin:0}
h1{font-size:20px;margin:8px 0 4px}
h2{font-size:16px;margin:16px 0 6px}
.hdr td:first-child{white-space:nowrap;color:#374151;width:1%}
</style></head><body>{{end}}

{{define "list"}}{{template "head" "Inbox"}}
<header><a href="./">smtpsink inbox</a></header>
<main>
{{if .}}<table>
<thead><tr><th>#</th><th>Subject</th><th>To</th><th>Received</th></tr></thead>
<tbody>{{range .}}
<tr><td class="muted">{{.ID}}</td>
<td><a href="m/{{.ID}}">{{.Subject}}</a>{{if not .Acked}} <span class="warn" title="connection dropped before 250">unacknowledged</span>{{end}}</td>
<td>{{.To}}</td><td class="muted">{{.Received}}</td></tr>{{end}}
</tbody></table>
{{else}}<p class="card muted">No mail yet.</p>{{end}}
</main></body></html>{{end}}

{{define "message"}}{{template "head" .Subject}}
<header><a href="../">&larr; smtpsink inbox</a></header>
<main>
<h1>{{if .Subject}}{{.Subject}}{{else}}(no subject){{end}}</h1>
<p class="muted">#{{.ID}} · from {{.From}} to {{range $i, $t := .To}}{{if $i}}, {{end}}{{$t}}{{end}} · {{.ReceivedAt.Format "2006-01-02 15:04:05"}} · connection {{.ConnID}}{{if not .Acked}} · <span class="warn">unacknowledged</span>{{end}} · <a href="{{.ID}}/raw">raw</a></p>
{{if .ParseError}}<p class="card warn">parse error: {{.ParseError}}</p>{{end}}
<h2>HTML part</h2>
{{if .HTML}}<iframe sandbox="` + linkSandbox + `" referrerpolicy="no-referrer" src="{{.ID}}/html" title="HTML part"></iframe>{{else}}<p class="card muted">No HTML part.</p>{{end}}
<h2>Text part</h2>
<div class="card">{{if .Text}}<pre>{{linkify .Text}}</pre>{{else}}<span class="muted">No text part.</span>{{end}}</div>
<h2>Headers</h2>
<table class="hdr"><tbody>{{range .Headers}}{{$n := .Name}}{{range .Values}}
<tr><td>{{$n}}</td><td><pre>{{.}}</pre></td></tr>{{end}}{{end}}
</tbody></table>
</main></body></html>{{end}}
`))
