package notifier

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"math"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/templates"
)

// DigestEmail is one email's worth of matches for one subscription: the jobs to
// list, newest first, and how many more matched beyond them.
type DigestEmail struct {
	ID             string // digest id; the Message-ID derives from it
	SubscriptionID string
	To             string
	Frequency      string // instant, daily or weekly
	Filter         matcher.Filter
	Jobs           []matcher.Job // newest first, in the order given
	More           int           // matches not listed
	UnsubscribeURL string        // one-click URL for List-Unsubscribe (required)
	ManageURL      string
	MoreURL        string // where "and N more" links to
	// Rollup marks the one message after a day that reached the daily
	// cap (max_alerts_per_day): "N more … matched after your daily
	// limit" instead of "N new …".
	Rollup bool
}

// ErrEmptyDigest is returned for a digest with no jobs: no email is sent
// when nothing matched.
var ErrEmptyDigest = errors.New("notifier: empty digest")

// RenderConfig configures a Renderer.
type RenderConfig struct {
	// From is the From address, e.g. `jobalert <alerts@example.com>`.
	From string
	// PublicURL is the service's public base URL (http or https); its
	// host names the Message-IDs.
	PublicURL string
	// Product is the name shown in emails; empty means "jobalert".
	Product string
	// MaxJobs caps the jobs listed in one digest; the rest count towards
	// "and N more". 0 means 25.
	MaxJobs int
	// ConfirmValidFor is how long a confirmation link works, as said in
	// the email; 0 means 7 days.
	ConfirmValidFor time.Duration
	// Now stamps the Date header; nil means time.Now.
	Now func() time.Time
}

// Renderer turns digests and notices into go-mail messages from the
// embedded templates, parsed once by NewRenderer. It is safe for concurrent
// use.
type Renderer struct {
	cfg    RenderConfig
	from   string
	host   string // of PublicURL, for Message-IDs
	scheme string // of PublicURL
	html   map[string]*htmltemplate.Template
	text   map[string]*texttemplate.Template
}

// Email kinds, each a pair of templates email/<kind>.html and .txt.
const (
	kindDigest          = "digest"
	kindConfirm         = "confirm"
	kindWebhookDisabled = "webhook_disabled"
	kindNotice          = "notice"
)

// maxSubjectKeywords caps the subscriber's keywords in a confirmation
// email's Subject, the only user text a Subject carries (docs/security.md).
const maxSubjectKeywords = 60

var templateFuncs = map[string]any{
	"inc":  func(i int) int { return i + 1 },
	"join": strings.Join,
}

// NewRenderer parses the email templates and checks cfg. A template that
// does not parse, a bad From address or a PublicURL that is not an absolute
// http(s) URL is an error.
func NewRenderer(cfg RenderConfig) (*Renderer, error) {
	if cfg.Product == "" {
		cfg.Product = "jobalert"
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = 25
	}
	if cfg.ConfirmValidFor <= 0 {
		cfg.ConfirmValidFor = 7 * 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Renderer{
		cfg:  cfg,
		html: make(map[string]*htmltemplate.Template),
		text: make(map[string]*texttemplate.Template),
	}
	if _, err := netmail.ParseAddress(cfg.From); err != nil {
		return nil, fmt.Errorf("notifier: From address %q: %w", cfg.From, err)
	}
	r.from = cfg.From
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("notifier: PublicURL %q is not an absolute http(s) URL", cfg.PublicURL)
	}
	r.host, r.scheme = u.Hostname(), u.Scheme
	for _, kind := range []string{kindDigest, kindConfirm, kindWebhookDisabled, kindNotice} {
		h, err := htmltemplate.New(kind).Funcs(templateFuncs).
			ParseFS(templates.FS, "email/layout.html", "email/"+kind+".html")
		if err != nil {
			return nil, fmt.Errorf("notifier: parse %s email template: %w", kind, err)
		}
		t, err := texttemplate.New(kind).Funcs(templateFuncs).
			ParseFS(templates.FS, "email/layout.txt", "email/"+kind+".txt")
		if err != nil {
			return nil, fmt.Errorf("notifier: parse %s email template: %w", kind, err)
		}
		r.html[kind], r.text[kind] = h, t
	}
	return r, nil
}

// emailView is what the email templates see.
type emailView struct {
	Title          string
	Preheader      string
	Intro          string
	Product        string
	PublicURL      string
	FooterNote     string
	ManageURL      string
	UnsubscribeURL string
	Jobs           []jobView
	More           int
	Total          int
	MoreURL        string
	Summary        string
	ActionURL      string
	ActionText     string
	ValidFor       string
	WebhookHost    string
	Lines          []string
}

type jobView struct {
	Title, Company, Locations, Workplace, Salary, URL, Posted string
	Visas                                                     []string
	// Age is when it was posted, from the renderer's clock: "posted 2
	// days ago"; Seniority its level; Sponsorship "sponsorship not
	// stated" or "no visa sponsorship" when the job says so (docs/matching.md
	// §4a); Why the clauses of the subscriber's filter it satisfied.
	Age, Seniority, Sponsorship string
	Why                         []string
}

// Digest renders d as a multipart text+HTML message to d.To with a stable
// Message-ID <digest-ID@host>, List-Unsubscribe and List-Unsubscribe-Post
// (RFC 8058) headers, and X-Jobalert-Digest / X-Jobalert-Subscription. It
// lists at most MaxJobs jobs and counts the rest in "and N more". A digest
// without jobs is ErrEmptyDigest; a missing id, recipient or unsubscribe URL
// is an error.
func (r *Renderer) Digest(d DigestEmail) (*mail.Msg, error) {
	if len(d.Jobs) == 0 {
		return nil, ErrEmptyDigest
	}
	if d.ID == "" || d.UnsubscribeURL == "" {
		return nil, errors.New("notifier: digest needs an id and an unsubscribe URL")
	}
	jobs, more := d.Jobs, d.More
	if len(jobs) > r.cfg.MaxJobs {
		more += len(jobs) - r.cfg.MaxJobs
		jobs = jobs[:r.cfg.MaxJobs]
	}
	total := len(jobs) + more
	noun := "jobs"
	if total == 1 {
		noun = "job"
	}
	subject := strconv.Itoa(total) + " new " + matcher.SummaryWithNoun(d.Filter, noun)
	intro := digestIntro(d.Frequency)
	if d.Rollup {
		// The wording of channel.Message.Heading for a CapRollup, so that
		// every channel says the same.
		subject = strconv.Itoa(total) + " more " + matcher.SummaryWithNoun(d.Filter, noun) + " matched after your daily limit"
		intro = "These matched after today's alerts reached your daily limit, newest first."
	}
	summary := matcher.Summary(d.Filter)

	v := emailView{
		Title:          subject,
		Intro:          intro,
		Product:        r.cfg.Product,
		PublicURL:      r.publicURL(),
		ManageURL:      d.ManageURL,
		UnsubscribeURL: d.UnsubscribeURL,
		More:           more,
		Total:          total,
		MoreURL:        d.MoreURL,
		Summary:        summary,
		FooterNote:     fmt.Sprintf("You get this %s because you subscribed to %s on %s.", alertName(d.Frequency), summary, r.host),
	}
	var pre2 []string
	now := r.cfg.Now()
	for i := range jobs {
		j := &jobs[i]
		jv := newJobView(j)
		jv.Age = postedAgo(j.PostedAt, now)
		jv.Why = whyMatched(d.Filter, j)
		v.Jobs = append(v.Jobs, jv)
		if i < 3 {
			pre2 = append(pre2, j.Title+" at "+j.Company)
		}
	}
	v.Preheader = strings.Join(pre2, " · ")

	m, err := r.newMsg(d.To, subject, "digest-"+msgIDPart(d.ID))
	if err != nil {
		return nil, err
	}
	if err := r.setUnsubscribe(m, d.UnsubscribeURL); err != nil {
		return nil, err
	}
	m.SetGenHeader("X-Jobalert-Digest", d.ID)
	if d.SubscriptionID != "" {
		m.SetGenHeader("X-Jobalert-Subscription", d.SubscriptionID)
	}
	if err := r.setBody(m, kindDigest, &v); err != nil {
		return nil, err
	}
	return m, nil
}

// ConfirmEmail is what the double opt-in email says.
type ConfirmEmail struct {
	To         string
	ConfirmURL string
	// Summary is the filter in words (Summary); Keywords, capped, is the
	// only part of it that goes into the Subject.
	Summary, Keywords string
	// WebhookHost is the host of the subscription's webhook URL, if any,
	// so the address owner sees where else its alerts would go.
	WebhookHost string
}

// Confirm renders the double opt-in email: one button to the confirmation
// URL, and the filter, in words, that the person asked for. The Subject is
// fixed text and at most maxSubjectKeywords of the keywords: a stranger
// can type anything into the form, and the Subject is what a phishing
// text would need.
func (r *Renderer) Confirm(c ConfirmEmail) (*mail.Msg, error) {
	if c.ConfirmURL == "" {
		return nil, errors.New("notifier: confirmation email needs a URL")
	}
	v := emailView{
		Title:       "Confirm your job alert",
		Preheader:   "One click and your job alert starts.",
		Product:     r.cfg.Product,
		PublicURL:   r.publicURL(),
		Summary:     c.Summary,
		ActionURL:   c.ConfirmURL,
		ValidFor:    humanDuration(r.cfg.ConfirmValidFor),
		WebhookHost: c.WebhookHost,
		FooterNote:  fmt.Sprintf("You get this email because this address was entered on %s.", r.host),
	}
	subject := "Confirm your job alert"
	if k := capRunes(strings.Join(strings.Fields(c.Keywords), " "), maxSubjectKeywords); k != "" {
		subject += ": " + k
	}
	m, err := r.newMsg(c.To, subject, "confirm-"+randomID())
	if err != nil {
		return nil, err
	}
	if err := r.setBody(m, kindConfirm, &v); err != nil {
		return nil, err
	}
	return m, nil
}

// capRunes cuts s to at most n runes, marking a cut with "...".
func capRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// Notice is a short service email about an address's alerts: the answer
// to a sign-up for an address at its cap, or a link that confirms a
// sensitive action. Subject, Title and Lines are the service's own text,
// never a stranger's.
type Notice struct {
	To, Subject, Title string
	Lines              []string
	ActionURL          string
	ActionText         string
	// ValidFor says how long ActionURL works; zero leaves it unsaid.
	ValidFor time.Duration
}

// Notice renders n.
func (r *Renderer) Notice(n Notice) (*mail.Msg, error) {
	if n.Subject == "" || n.Title == "" {
		return nil, errors.New("notifier: a notice needs a subject and a title")
	}
	v := emailView{
		Title:      n.Title,
		Preheader:  n.Title,
		Product:    r.cfg.Product,
		PublicURL:  r.publicURL(),
		Lines:      n.Lines,
		ActionURL:  n.ActionURL,
		ActionText: n.ActionText,
		FooterNote: fmt.Sprintf("You get this email because this address was entered on %s. If it was not you, ignore it: nothing changes.", r.host),
	}
	if n.ValidFor > 0 {
		v.ValidFor = humanDuration(n.ValidFor)
	}
	m, err := r.newMsg(n.To, n.Subject, "notice-"+randomID())
	if err != nil {
		return nil, err
	}
	if err := r.setBody(m, kindNotice, &v); err != nil {
		return nil, err
	}
	return m, nil
}

// WebhookDisabled renders the notice that the webhook endpoint webhookURL
// answered 410 Gone and is no longer called.
func (r *Renderer) WebhookDisabled(to, webhookURL string) (*mail.Msg, error) {
	v := emailView{
		Title:      "Your webhook was disabled",
		Preheader:  "The endpoint answered 410 Gone; email alerts continue.",
		Product:    r.cfg.Product,
		PublicURL:  r.publicURL(),
		ActionURL:  webhookURL,
		FooterNote: fmt.Sprintf("You get this email because a job alert on %s delivers to this webhook.", r.host),
	}
	m, err := r.newMsg(to, "Webhook disabled: the endpoint answered 410 Gone", "webhook-disabled-"+randomID())
	if err != nil {
		return nil, err
	}
	if err := r.setBody(m, kindWebhookDisabled, &v); err != nil {
		return nil, err
	}
	return m, nil
}

// ChannelDisabledEmail is the notice that a chat channel of a
// subscription was turned off because its destination is gone.
type ChannelDisabledEmail struct {
	To string
	// Channel is the channel's name (store.ChannelSlack, ...).
	Channel string
	// Reason is what the service answered, redacted; never the webhook
	// URL, which is a secret.
	Reason    string
	ManageURL string
}

// ChannelDisabled renders the notice that a chat channel was turned off:
// the Slack or Discord webhook was deleted (or its channel archived), or
// the person blocked the Telegram bot. It names the channel, what the
// service said, that the other channels go on, and links to the manage
// page, where the channel can be set up again. The webhook URL is never
// in it.
func (r *Renderer) ChannelDisabled(n ChannelDisabledEmail) (*mail.Msg, error) {
	if n.Channel == "" || n.ManageURL == "" {
		return nil, errors.New("notifier: a channel-disabled notice needs the channel and the manage URL")
	}
	name := ChannelLabel(n.Channel)
	why := "its destination is gone"
	switch n.Channel {
	case "slack", "discord":
		why = "the " + name + " webhook no longer exists (it was deleted, or its channel archived)"
	case "telegram":
		why = "the " + r.cfg.Product + " bot can no longer write to your Telegram chat (it was blocked, or the chat is gone)"
	}
	lines := []string{
		fmt.Sprintf("%s stopped accepting your job alert: %s. %s has stopped posting your alerts there.", name, why, r.cfg.Product),
	}
	if n.Reason != "" {
		lines = append(lines, name+" answered: "+capRunes(n.Reason, 300))
	}
	lines = append(lines,
		"Your other channels are not affected and keep getting your alerts.",
		"To get alerts in "+name+" again, set it up anew on the manage page.")
	v := emailView{
		Title:      "Your " + name + " alerts were turned off",
		Preheader:  name + " no longer accepts your alerts; your other channels continue.",
		Product:    r.cfg.Product,
		PublicURL:  r.publicURL(),
		Lines:      lines,
		ActionURL:  n.ManageURL,
		ActionText: "Manage this alert",
		FooterNote: fmt.Sprintf("You get this email because a job alert on %s posts to %s.", r.host, name),
	}
	m, err := r.newMsg(n.To, v.Title, "channel-disabled-"+randomID())
	if err != nil {
		return nil, err
	}
	if err := r.setBody(m, kindNotice, &v); err != nil {
		return nil, err
	}
	return m, nil
}

// ChannelLabel is a channel's name as people write it ("Slack").
func ChannelLabel(ch string) string {
	switch ch {
	case "slack":
		return "Slack"
	case "discord":
		return "Discord"
	case "telegram":
		return "Telegram"
	}
	return capRunes(ch, 20)
}

func (r *Renderer) publicURL() string { return strings.TrimSuffix(r.cfg.PublicURL, "/") + "/" }

func (r *Renderer) newMsg(to, subject, idLocal string) (*mail.Msg, error) {
	m := mail.NewMsg()
	if err := m.From(r.from); err != nil {
		return nil, fmt.Errorf("notifier: from: %w", err)
	}
	if err := m.To(to); err != nil {
		return nil, fmt.Errorf("notifier: recipient %q: %w", to, err)
	}
	m.Subject(subject)
	m.SetMessageIDWithValue(idLocal + "@" + r.host)
	m.SetDateWithValue(r.cfg.Now())
	m.SetUserAgent(r.cfg.Product)
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetGenHeader("X-Auto-Response-Suppress", "All")
	return m, nil
}

// setUnsubscribe sets the RFC 8058 pair. go-mail's SetListUnsubscribeOneClick
// takes https only; a plain http URL is accepted when PublicURL is http too
// (the demo), with the same two headers set directly.
func (r *Renderer) setUnsubscribe(m *mail.Msg, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("notifier: unsubscribe URL %q is not absolute", raw)
	}
	switch {
	case u.Scheme == "https":
		if err := m.SetListUnsubscribeOneClick(raw); err != nil {
			return fmt.Errorf("notifier: unsubscribe URL: %w", err)
		}
	case u.Scheme == "http" && r.scheme == "http":
		m.SetListUnsubscribe(raw)
		m.SetListUnsubscribePost()
	default:
		return fmt.Errorf("notifier: unsubscribe URL %q must be https (http only with an http PublicURL)", raw)
	}
	return nil
}

func (r *Renderer) setBody(m *mail.Msg, kind string, v *emailView) error {
	var text, html bytes.Buffer
	if err := r.text[kind].ExecuteTemplate(&text, "layout", v); err != nil {
		return fmt.Errorf("notifier: render %s text: %w", kind, err)
	}
	if err := r.html[kind].ExecuteTemplate(&html, "layout", v); err != nil {
		return fmt.Errorf("notifier: render %s html: %w", kind, err)
	}
	m.SetBodyString(mail.TypeTextPlain, text.String())
	m.AddAlternativeString(mail.TypeTextHTML, html.String())
	return nil
}

func newJobView(j *matcher.Job) jobView {
	v := jobView{
		Title:     j.Title,
		Company:   j.Company,
		Locations: strings.Join(trimAll(j.Locations), "; "),
		Workplace: matcher.WorkplaceLabel(j.Workplace),
		Salary:    FormatSalary(j.Salary),
		URL:       j.URL,
	}
	seen := map[string]bool{}
	for _, s := range trimAll(j.VisaTypes) {
		if !seen[strings.ToLower(s)] {
			seen[strings.ToLower(s)] = true
			v.Visas = append(v.Visas, s)
		}
	}
	if !j.PostedAt.IsZero() {
		v.Posted = j.PostedAt.UTC().Format("Jan 2")
	}
	v.Seniority = strings.ToLower(strings.TrimSpace(j.Seniority))
	switch j.Sponsorship() {
	case matcher.SponsorshipUnknown:
		v.Sponsorship = "sponsorship not stated"
	case matcher.SponsorshipNo:
		v.Sponsorship, v.Visas = "no visa sponsorship", nil
	}
	return v
}

// postedAgo says when a job was posted, relative to now: "posted today",
// "posted yesterday", "posted 3 days ago", "posted 2 weeks ago"; "" when
// the job has no date. A date after now reads as today.
func postedAgo(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch days := int(d / (24 * time.Hour)); {
	case days < 1:
		return "posted today"
	case days == 1:
		return "posted yesterday"
	case days < 14:
		return "posted " + strconv.Itoa(days) + " days ago"
	case days < 60:
		return "posted " + strconv.Itoa(days/7) + " weeks ago"
	default:
		return "posted " + strconv.Itoa(days/30) + " months ago"
	}
}

// whyMatched names, in words, the clauses of f that j satisfied
// (matcher.Explain): `title has "backend engineer"`, "sponsors H-1B", "in
// Seattle, WA". It is nil when j does not match f (the filter changed since
// the match).
func whyMatched(f matcher.Filter, j *matcher.Job) []string {
	reasons, ok, err := matcher.Explain(f, j)
	if err != nil || !ok {
		return nil
	}
	var out []string
	for _, r := range reasons {
		switch r.Clause {
		case "keywords":
			out = append(out, "title has "+strconv.Quote(r.Detail))
		case "visa_types":
			if r.Detail == "sponsorship not stated" {
				out = append(out, "sponsorship not stated (you asked for those too)")
			} else {
				out = append(out, "sponsors "+r.Detail)
			}
		case "locations":
			if strings.EqualFold(r.Detail, "remote") {
				out = append(out, "remote")
			} else {
				out = append(out, "in "+r.Detail)
			}
		case "min_salary":
			out = append(out, "pays "+r.Detail)
		case "companies":
			out = append(out, "at "+r.Detail)
		case "seniority":
			out = append(out, r.Detail+" level")
		case "tags":
			out = append(out, "tagged "+r.Detail)
		}
	}
	return out
}

func digestIntro(freq string) string {
	switch freq {
	case "daily":
		return "New since your last daily alert, newest first."
	case "weekly":
		return "New since your last weekly alert, newest first."
	}
	return "Just matched your alert, newest first."
}

func alertName(freq string) string {
	switch freq {
	case "daily", "weekly", "instant":
		return freq + " alert"
	}
	return "alert"
}

func trimAll(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// FormatSalary writes a pay range for people: "$115,000–$160,000 a year",
// "$80–$95 an hour", "From $90,000 a year", "Up to €70,000 a year". It
// returns "" for a nil salary or one with neither bound.
func FormatSalary(s *matcher.Salary) string {
	if s == nil {
		return ""
	}
	sym := currencySymbol(s.Currency)
	per := periodPhrase(s.Period)
	lo, hi := s.Min, s.Max
	switch {
	case lo > 0 && hi > 0 && lo != hi:
		if lo > hi {
			lo, hi = hi, lo
		}
		return formatAmount(lo, sym) + "–" + formatAmount(hi, sym) + " " + per
	case lo > 0 && hi > 0:
		return formatAmount(lo, sym) + " " + per
	case lo > 0:
		return "From " + formatAmount(lo, sym) + " " + per
	case hi > 0:
		return "Up to " + formatAmount(hi, sym) + " " + per
	}
	return ""
}

func currencySymbol(code string) string {
	switch c := strings.ToUpper(strings.TrimSpace(code)); c {
	case "", "USD":
		return "$"
	case "EUR":
		return "€"
	case "GBP":
		return "£"
	case "JPY":
		return "¥"
	case "INR":
		return "₹"
	case "CAD":
		return "CA$"
	case "AUD":
		return "A$"
	default:
		return c + " "
	}
}

func periodPhrase(p string) string {
	switch p = strings.ToLower(strings.TrimSpace(p)); p {
	case "", "year":
		return "a year"
	case "month", "week", "day":
		return "a " + p
	case "hour":
		return "an hour"
	default:
		return "per " + p
	}
}

// formatAmount groups thousands with commas and shows cents only when there
// are any: "$115,000", "$80.50".
func formatAmount(v float64, sym string) string {
	whole := math.Floor(v)
	cents := int64(math.Round((v - whole) * 100))
	if cents == 100 {
		whole, cents = whole+1, 0
	}
	digits := strconv.FormatFloat(whole, 'f', 0, 64)
	var b strings.Builder
	b.WriteString(sym)
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if cents > 0 {
		fmt.Fprintf(&b, ".%02d", cents)
	}
	return b.String()
}

func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + " days"
	case d >= time.Hour && d%time.Hour == 0:
		h := int(d / time.Hour)
		if h == 1 {
			return "1 hour"
		}
		return strconv.Itoa(h) + " hours"
	}
	return d.String()
}

// msgIDPart keeps the characters a Message-ID's left part may hold
// (RFC 5322 dot-atom-text) and maps the rest to "-".
func msgIDPart(id string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		case strings.ContainsRune("!#$%&'*+/=?^_`{|}~-.", r):
			return r
		}
		return '-'
	}, id)
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
