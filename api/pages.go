package api

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/preview"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/templates"
)

// Page templates under templates/web, each rendered inside web/layout.html
// with the shared form fields of web/fields.html.
var pageNames = []string{"subscribe", "inbox", "confirm", "message", "unsubscribe", "unsubscribed", "manage", "action"}

// Static files under templates/web served at /static/.
var staticFiles = map[string]string{
	"style.css":   "text/css; charset=utf-8",
	"tz.js":       "text/javascript; charset=utf-8",
	"preview.js":  "text/javascript; charset=utf-8",
	"frame.js":    "text/javascript; charset=utf-8",
	"channels.js": "text/javascript; charset=utf-8",
}

type pages struct {
	product string
	t       map[string]*template.Template
}

func parsePages(product string) (*pages, error) {
	p := &pages{product: product, t: map[string]*template.Template{}}
	funcs := template.FuncMap{
		"hourLabel": func(h int) string { return fmt.Sprintf("%02d:00", h) },
		"title":     func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
		"ago":       ago,
	}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templates.FS, "web/layout.html", "web/fields.html", "web/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("api: parse page template %s: %w", name, err)
		}
		p.t[name] = t
	}
	for f := range staticFiles {
		if _, err := templates.FS.ReadFile("web/" + f); err != nil {
			return nil, fmt.Errorf("api: static file %s: %w", f, err)
		}
	}
	return p, nil
}

// view is what every page template sees.
type view struct {
	Page     string // template name; <main id="page-NAME">
	Product  string
	Title    string
	Notice   string // a message at the top (success)
	Alert    string // a message at the top (problem)
	Message  []string
	Link     string // a follow-up link for message pages
	LinkText string
	TZScript bool // load /static/tz.js

	// Embed: the compact page of GET /embed, framed by a board (no page
	// chrome; frame.js sizes the frame). ParentOrigin is the board's
	// origin the frame reports its height to, when it is allowed.
	Embed        bool
	ParentOrigin string
	// PostTo is where the subscribe form posts: "/" or "/embed".
	PostTo string
	// Preview is the filter's live preview, when asked for (the Preview
	// button, or a search URL); PreviewOff says the server has none.
	Preview    *preview.Result
	PreviewOff bool
	// Ignored lists query-string values of a search URL that were not
	// understood and left out of the form.
	Ignored []string
	// Now is the server's clock when the page is rendered ("2 days ago").
	Now time.Time

	Form   formValues
	Errors fieldErrors

	// confirm, unsubscribe, manage
	Token      string
	CSRF       string
	Summary    string
	Email      string
	Status     string
	StatusText string
	Others     int // other subscriptions of the same address
	// WebhookHost is the host of the subscription's webhook URL, if any.
	WebhookHost string
	// ValidFor is how long a confirmation link works, in words.
	ValidFor string

	// Offer says which channels the form offers: every channel the server
	// has (telegram and feed need their Deps), and on the manage page the
	// ones the subscription has.
	Offer map[string]bool
	// Chan is the manage page's state of the channels.
	Chan *channelState
	// FeedURL and TelegramLink: the "check your inbox" page after a
	// sign-up with those channels.
	FeedURL      string
	TelegramLink string

	// action: a page with one button that POSTs Token to FormAction, or
	// the result of such a POST (a new webhook Secret).
	FormAction  string
	ButtonText  string
	ButtonClass string
	Secret      string

	// option lists
	VisaCodes   []string
	Seniorities []string
	Hours       []int
	Days        []string
	Zones       []string
}

// formValues are the subscription form's inputs as typed, so a page with
// errors shows them again.
type formValues struct {
	Email           string
	Keywords        string
	ExcludeKeywords string // one per line
	Visa            map[string]bool
	Locations       string // one per line
	Remote          bool
	MinSalary       string
	// IncludeUnknownVisa: "also jobs that don't say" (docs/matching.md §4a).
	IncludeUnknownVisa bool
	Seniority          map[string]bool
	Companies          string // one per line
	ExcludeCompanies   string // one per line
	Tags               string // one per line
	Frequency          string
	Timezone           string
	SendHour           int
	WeeklyDay          string
	AutoTZ             bool // let the script fill in the browser's zone

	// Channels are the boxes ticked; ChannelsForm says the form had them
	// (a form without the group keeps the stored channels). The URLs are
	// read, never shown again: they carry a token.
	Channels     map[string]bool
	ChannelsForm bool
	WebhookURL   string
	SlackURL     string
	DiscordURL   string
	// Instant alert options, as typed; InstantForm says the form had them.
	QuietStart  string
	QuietEnd    string
	MaxPerDay   string
	InstantForm bool
}

// channelState is what the manage page shows about a subscription's
// channels besides the boxes: the masked chat URLs, why a channel was
// turned off, the Telegram binding and the feed URL.
type channelState struct {
	SlackMasked       string
	DiscordMasked     string
	WebhookHost       string
	Disabled          map[string]string
	TelegramConnected bool
	TelegramLink      string
	FeedURL           string
}

var commonZones = []string{
	"UTC", "America/Los_Angeles", "America/Denver", "America/Phoenix", "America/Chicago", "America/New_York",
	"America/Toronto", "America/Vancouver", "America/Mexico_City", "America/Sao_Paulo", "Europe/London",
	"Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin", "Europe/Amsterdam", "Europe/Madrid",
	"Europe/Warsaw", "Europe/Kyiv", "Africa/Lagos", "Africa/Nairobi", "Asia/Dubai", "Asia/Kolkata",
	"Asia/Singapore", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
}

func (s *Server) newView(title string) *view {
	hours := make([]int, 24)
	for i := range hours {
		hours[i] = i
	}
	offer := map[string]bool{store.ChannelEmail: true, store.ChannelSlack: true, store.ChannelDiscord: true,
		store.ChannelWebhook: s.deps.Webhooks != nil, store.ChannelTelegram: s.deps.Telegram != nil, store.ChannelFeed: s.deps.Feeds != nil}
	return &view{
		Product: s.cfg.Product, Title: title, Errors: fieldErrors{}, Now: s.cfg.Clock(), Offer: offer,
		VisaCodes: matcher.VisaCodes(), Seniorities: matcher.SeniorityLevels(), Hours: hours, Days: weekdays, Zones: commonZones,
	}
}

// render writes page name with status.
func (s *Server) render(w http.ResponseWriter, status int, name string, v *view) {
	v.Page = name
	if len(v.Errors) > 0 { // "must be ..." reads as a sentence next to its field
		errs := make(fieldErrors, len(v.Errors))
		for k, m := range v.Errors {
			errs[k] = upperFirst(m)
		}
		v.Errors = errs
	}
	var buf bytes.Buffer
	if err := s.pages.t[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error", nil)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderMessage writes a page with a title and a few sentences.
func (s *Server) renderMessage(w http.ResponseWriter, status int, title string, lines ...string) {
	v := s.newView(title)
	v.Message = lines
	v.Link, v.LinkText = "/", "Create a job alert"
	s.render(w, status, "message", v)
}

// static serves the few files under templates/web that pages link to.
func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ct, ok := staticFiles[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, err := templates.FS.ReadFile("web/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=3600")
	_, _ = w.Write(b)
}

// formFromSubscription fills the form with a stored subscription.
func formFromSubscription(sub *store.Subscription) formValues {
	f := sub.Filter
	fv := formValues{
		Email: sub.Email, Keywords: f.Keywords, ExcludeKeywords: lines(f.ExcludeKeywords),
		Visa: map[string]bool{}, Seniority: map[string]bool{}, MinSalary: "",
		Companies: lines(f.Companies), ExcludeCompanies: lines(f.ExcludeCompanies), Tags: lines(f.Tags),
		Frequency: sub.Frequency, Timezone: sub.Timezone, SendHour: sub.SendHour, WeeklyDay: sub.WeeklyDay,
		IncludeUnknownVisa: f.IncludeUnknownVisa, Channels: map[string]bool{},
	}
	for _, c := range sub.Channels {
		fv.Channels[c] = true
	}
	if q := sub.QuietHours; q != nil {
		fv.QuietStart, fv.QuietEnd = q.Start, q.End
	}
	if sub.MaxAlertsPerDay > 0 {
		fv.MaxPerDay = strconv.Itoa(sub.MaxAlertsPerDay)
	}
	for _, v := range f.VisaTypes {
		fv.Visa[v] = true
	}
	for _, v := range f.Seniority {
		fv.Seniority[v] = true
	}
	var locs []string
	for _, l := range f.Locations {
		if strings.EqualFold(strings.TrimSpace(l), "remote") {
			fv.Remote = true
			continue
		}
		locs = append(locs, l)
	}
	fv.Locations = lines(locs)
	if f.MinSalary > 0 {
		fv.MinSalary = strconv.FormatInt(f.MinSalary, 10)
	}
	return fv
}

func lines(l []string) string { return strings.Join(l, "\n") }

// splitLines splits a textarea into its non-blank lines.
func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// parseForm reads the subscription form of the subscribe and manage
// pages into an input (for validation) and the values as typed.
func parseForm(r *http.Request, bad fieldErrors) (subscriptionInput, formValues) {
	fv := formValues{
		Email:              strings.TrimSpace(r.PostFormValue("email")),
		Keywords:           r.PostFormValue("keywords"),
		ExcludeKeywords:    r.PostFormValue("exclude_keywords"),
		Visa:               map[string]bool{},
		Seniority:          map[string]bool{},
		Locations:          r.PostFormValue("locations"),
		Remote:             r.PostFormValue("remote") != "",
		IncludeUnknownVisa: r.PostFormValue("include_unknown_visa") != "",
		MinSalary:          strings.TrimSpace(r.PostFormValue("min_salary")),
		Companies:          r.PostFormValue("companies"),
		ExcludeCompanies:   r.PostFormValue("exclude_companies"),
		Tags:               r.PostFormValue("tags"),
		Frequency:          r.PostFormValue("frequency"),
		Timezone:           strings.TrimSpace(r.PostFormValue("timezone")),
		WeeklyDay:          r.PostFormValue("weekly_day"),
		Channels:           map[string]bool{},
		ChannelsForm:       r.PostFormValue("channels_form") != "",
		WebhookURL:         strings.TrimSpace(r.PostFormValue("webhook_url")),
		SlackURL:           strings.TrimSpace(r.PostFormValue("slack_webhook_url")),
		DiscordURL:         strings.TrimSpace(r.PostFormValue("discord_webhook_url")),
		QuietStart:         strings.TrimSpace(r.PostFormValue("quiet_start")),
		QuietEnd:           strings.TrimSpace(r.PostFormValue("quiet_end")),
		MaxPerDay:          strings.TrimSpace(r.PostFormValue("max_alerts_per_day")),
	}
	_, hasQuiet := r.PostForm["quiet_start"]
	_, hasCap := r.PostForm["max_alerts_per_day"]
	fv.InstantForm = hasQuiet || hasCap
	for _, v := range r.PostForm["channels"] {
		fv.Channels[strings.ToLower(strings.TrimSpace(v))] = true
	}
	for _, v := range r.PostForm["visa_types"] {
		fv.Visa[v] = true
	}
	for _, v := range r.PostForm["seniority"] {
		fv.Seniority[v] = true
	}
	h, err := strconv.Atoi(r.PostFormValue("send_hour"))
	if err != nil {
		bad.add("send_hour", "must be an hour from 0 to 23")
	}
	fv.SendHour = h
	in, _ := formInput(fv, bad)
	return in, fv
}

// formInput turns the form's values into a subscription input; it adds an
// error for a minimum salary that is not a number.
func formInput(fv formValues, bad fieldErrors) (subscriptionInput, formValues) {
	in := subscriptionInput{
		Email: fv.Email, Frequency: fv.Frequency, Timezone: fv.Timezone, WeeklyDay: fv.WeeklyDay, SendHour: fv.SendHour,
		Filter: matcher.Filter{
			Keywords: fv.Keywords, ExcludeKeywords: splitLines(fv.ExcludeKeywords), Locations: splitLines(fv.Locations),
			Companies: splitLines(fv.Companies), ExcludeCompanies: splitLines(fv.ExcludeCompanies), Tags: splitLines(fv.Tags),
			IncludeUnknownVisa: fv.IncludeUnknownVisa,
		},
	}
	// Known codes in their order, then any other value (refused by
	// validation, naming it).
	for _, c := range matcher.VisaCodes() {
		if fv.Visa[c] {
			in.Filter.VisaTypes = append(in.Filter.VisaTypes, c)
		}
	}
	for _, v := range sortedSet(fv.Visa) {
		if !contains(matcher.VisaCodes(), v) {
			in.Filter.VisaTypes = append(in.Filter.VisaTypes, v)
		}
	}
	for _, l := range matcher.SeniorityLevels() {
		if fv.Seniority[l] {
			in.Filter.Seniority = append(in.Filter.Seniority, l)
		}
	}
	for _, v := range sortedSet(fv.Seniority) {
		if !contains(matcher.SeniorityLevels(), v) {
			in.Filter.Seniority = append(in.Filter.Seniority, v)
		}
	}
	if fv.Remote {
		in.Filter.Locations = append(in.Filter.Locations, "remote")
	}
	if fv.MinSalary != "" {
		clean := strings.NewReplacer(",", "", "_", "", " ", "", "$", "").Replace(fv.MinSalary)
		n, err := strconv.ParseInt(clean, 10, 64)
		if err != nil {
			bad.add("filter.min_salary", "must be a whole number of US dollars a year, like 150000")
		}
		in.Filter.MinSalary = n
	}
	if in.Frequency == "" {
		in.Frequency = defaultFreq
	}
	if in.Timezone == "" {
		in.Timezone = defaultZone
	}
	if in.Frequency != schedule.Weekly {
		in.WeeklyDay = "" // the select always posts a day; it matters only for weekly
	}
	formChannels(fv, &in, bad)
	return in, fv
}

// formChannels reads the form's channel boxes, the URLs of the boxes
// ticked (a URL typed and then unticked is dropped, as the person
// expects), and the instant alert options, which apply to instant alerts
// only (the form always posts them, as it always posts a weekly day).
func formChannels(fv formValues, in *subscriptionInput, bad fieldErrors) {
	if fv.ChannelsForm {
		in.ChannelsSet = true
		for _, c := range store.AllChannels {
			if fv.Channels[c] {
				in.Channels = append(in.Channels, c)
			}
		}
		for _, c := range sortedSet(fv.Channels) {
			if !contains(store.AllChannels, c) {
				in.Channels = append(in.Channels, c)
			}
		}
		if fv.Channels[store.ChannelWebhook] {
			in.WebhookURL = fv.WebhookURL
		}
		if fv.Channels[store.ChannelSlack] {
			in.SlackURL = fv.SlackURL
		}
		if fv.Channels[store.ChannelDiscord] {
			in.DiscordURL = fv.DiscordURL
		}
	} else {
		in.WebhookURL, in.SlackURL, in.DiscordURL = fv.WebhookURL, fv.SlackURL, fv.DiscordURL
	}
	if !fv.InstantForm {
		return
	}
	in.QuietSet, in.CapSet = true, true
	if in.Frequency != schedule.Instant {
		return
	}
	switch {
	case fv.QuietStart != "" && fv.QuietEnd != "":
		in.QuietHours = &schedule.QuietHours{Start: fv.QuietStart, End: fv.QuietEnd}
	case fv.QuietStart != "" || fv.QuietEnd != "":
		bad.add("quiet_hours", "needs both times: when quiet hours start and when they end (or neither, for none)")
	}
	if fv.MaxPerDay != "" {
		n, err := strconv.Atoi(fv.MaxPerDay)
		if err != nil {
			bad.add("max_alerts_per_day", "must be a whole number from 0 (unlimited) to %d", schedule.MaxAlertsPerDay)
		}
		in.MaxAlertsPerDay = n
	}
}

func sortedSet(m map[string]bool) []string {
	var out []string
	for k, ok := range m {
		if ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// filterParams are the query-string names of a search URL that set the
// filter (docs/embed.md); hasFilterParam reports whether q names one.
var filterParams = []string{"keywords", "q", "exclude_keywords", "exclude", "visa", "visa_types", "location", "locations",
	"remote", "min_salary", "company", "companies", "exclude_company", "exclude_companies", "seniority", "tag", "tags",
	"include_unknown_visa"}

func hasFilterParam(q url.Values) bool {
	for _, p := range filterParams {
		for _, v := range q[p] {
			if strings.TrimSpace(v) != "" {
				return true
			}
		}
	}
	return false
}

// formFromQuery fills the subscribe form from a search URL's query string
// (docs/embed.md): every filter field and the schedule, a repeated
// parameter or (for visas, seniority and tags) a comma-separated list for
// a list field. It returns the values it could not use: unknown visa codes
// and seniority levels, a frequency, hour or day that is not one.
func formFromQuery(q url.Values) (formValues, []string) {
	fv := formValues{Frequency: defaultFreq, Timezone: defaultZone, SendHour: defaultHour, WeeklyDay: defaultWeekly,
		AutoTZ: true, Visa: map[string]bool{}, Seniority: map[string]bool{}, Channels: map[string]bool{}}
	var ignored []string
	all := func(names ...string) []string {
		var out []string
		for _, n := range names {
			for _, v := range q[n] {
				if v = strings.TrimSpace(v); v != "" {
					out = append(out, v)
				}
			}
		}
		return out
	}
	split := func(names ...string) []string {
		var out []string
		for _, v := range all(names...) {
			for _, p := range strings.Split(v, ",") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	yes := func(name string) bool {
		v := strings.ToLower(strings.TrimSpace(q.Get(name)))
		return v == "1" || v == "true" || v == "yes" || v == "on"
	}
	fv.Email = strings.TrimSpace(q.Get("email"))
	fv.Keywords = strings.Join(all("keywords", "q"), " ")
	fv.ExcludeKeywords = lines(all("exclude_keywords", "exclude"))
	for _, v := range split("visa", "visa_types") {
		if c, ok := matcher.CanonicalVisa(v); ok {
			fv.Visa[c] = true
		} else {
			ignored = append(ignored, "visa "+strconv.Quote(v))
		}
	}
	fv.IncludeUnknownVisa = yes("include_unknown_visa")
	var locs []string
	for _, l := range all("location", "locations") {
		if strings.EqualFold(l, "remote") {
			fv.Remote = true
			continue
		}
		locs = append(locs, l)
	}
	fv.Locations = lines(locs)
	fv.Remote = fv.Remote || yes("remote")
	fv.MinSalary = strings.TrimSpace(q.Get("min_salary"))
	fv.Companies = lines(all("company", "companies"))
	fv.ExcludeCompanies = lines(all("exclude_company", "exclude_companies"))
	for _, v := range split("seniority") {
		if l := strings.ToLower(v); contains(matcher.SeniorityLevels(), l) {
			fv.Seniority[l] = true
		} else {
			ignored = append(ignored, "seniority "+strconv.Quote(v))
		}
	}
	fv.Tags = lines(split("tag", "tags"))
	if f := strings.ToLower(q.Get("frequency")); f != "" {
		if contains([]string{schedule.Instant, schedule.Daily, schedule.Weekly}, f) {
			fv.Frequency = f
		} else {
			ignored = append(ignored, "frequency "+strconv.Quote(f))
		}
	}
	if tz := strings.TrimSpace(q.Get("timezone")); tz != "" {
		fv.Timezone, fv.AutoTZ = tz, false
	}
	if h := q.Get("send_hour"); h != "" {
		if n, err := strconv.Atoi(h); err == nil && n >= 0 && n <= 23 {
			fv.SendHour = n
		} else {
			ignored = append(ignored, "send_hour "+strconv.Quote(h))
		}
	}
	for _, c := range split("channels", "channel") {
		if c = strings.ToLower(c); contains(store.AllChannels, c) {
			fv.Channels[c] = true
		} else {
			ignored = append(ignored, "channel "+strconv.Quote(c))
		}
	}
	if len(fv.Channels) == 0 {
		fv.Channels[store.ChannelEmail] = true
	}
	if d := strings.ToLower(q.Get("weekly_day")); d != "" {
		if contains(weekdays, d) {
			fv.WeeklyDay = d
		} else {
			ignored = append(ignored, "weekly_day "+strconv.Quote(d))
		}
	}
	return fv, ignored
}

// parentOrigin is the board origin a framed page reports its height to:
// parent when it is one of JOBALERT_ALLOWED_ORIGINS, else none.
func (s *Server) parentOrigin(parent string, embed bool) string {
	if embed && s.allowedOrigin[parent] {
		return parent
	}
	return ""
}

// ago says how long before now t was, as an email or page reads it:
// "today", "yesterday", "3 days ago", "2 weeks ago".
func ago(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch days := int(d.Hours() / 24); {
	case d < 24*time.Hour:
		return "today"
	case days == 1:
		return "yesterday"
	case days < 14:
		return strconv.Itoa(days) + " days ago"
	case days < 60:
		return strconv.Itoa(days/7) + " weeks ago"
	default:
		return strconv.Itoa(days/30) + " months ago"
	}
}

// subscribePage is GET /: the subscription form, filled in from the query
// string of a search URL (docs/embed.md), with the preview of that search
// when it names a filter.
func (s *Server) subscribePage(w http.ResponseWriter, r *http.Request) {
	s.renderSubscribe(w, r, false)
}

// embedPage is GET /embed: the same form, compact and without page chrome,
// for a board's own pages (docs/embed.md); only JOBALERT_ALLOWED_ORIGINS
// may frame it.
func (s *Server) embedPage(w http.ResponseWriter, r *http.Request) {
	s.renderSubscribe(w, r, true)
}

func (s *Server) renderSubscribe(w http.ResponseWriter, r *http.Request, embed bool) {
	v := s.subscribeView("Get job alerts by email", embed, r.URL.Query())
	fv, ignored := formFromQuery(r.URL.Query())
	v.Form, v.Ignored = fv, ignored
	if hasFilterParam(r.URL.Query()) {
		bad := fieldErrors{}
		in, _ := formInput(fv, bad)
		s.previewInto(r, v, in.Filter, bad)
	}
	s.render(w, http.StatusOK, "subscribe", v)
}

// subscribeView is the subscribe page's view, plain or embedded.
func (s *Server) subscribeView(title string, embed bool, q url.Values) *view {
	v := s.newView(title)
	v.TZScript = true
	v.PostTo = "/"
	if embed {
		v.Embed, v.PostTo = true, "/embed"
		if o := q.Get("parent"); s.allowedOrigin[o] {
			v.ParentOrigin = o
		}
	}
	v.PreviewOff = s.deps.Preview == nil
	return v
}

// previewInto validates a filter and puts its preview in v, or its errors
// in v.Errors.
func (s *Server) previewInto(r *http.Request, v *view, f matcher.Filter, bad fieldErrors) {
	if s.deps.Preview == nil {
		return
	}
	validateFilter(&f, bad)
	for k, m := range bad {
		if strings.HasPrefix(k, "filter") {
			v.Errors[k] = m
		}
	}
	if len(v.Errors) > 0 {
		return
	}
	done, busy := s.previewAllowed(r)
	if busy != notBusy {
		return
	}
	defer done()
	if res, err := s.deps.Preview.Preview(f, s.cfg.Clock()); err == nil {
		v.Preview = &res
	}
}

// subscribeForm is POST /: the form's submission. Errors come back next to
// their fields with the values kept; success shows "check your inbox". The
// Preview button (action=preview) shows the filter's preview instead and
// creates nothing, so the preview works without JavaScript.
func (s *Server) subscribeForm(w http.ResponseWriter, r *http.Request) {
	s.submitSubscribe(w, r, false)
}

// embedForm is POST /embed: subscribeForm for the embedded form.
func (s *Server) embedForm(w http.ResponseWriter, r *http.Request) {
	s.submitSubscribe(w, r, true)
}

func (s *Server) submitSubscribe(w http.ResponseWriter, r *http.Request, embed bool) {
	if err := s.signup.Check(r); err != nil {
		s.renderMessage(w, http.StatusForbidden, "Form refused", "This form was sent from another site. Open the page again and retry.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		s.renderMessage(w, http.StatusBadRequest, "Form not readable", "The form could not be read. Open the page again and retry.")
		return
	}
	bad := fieldErrors{}
	in, fv := parseForm(r, bad)
	if r.PostFormValue("action") == "preview" {
		v := s.subscribeView("Get job alerts by email", embed, r.URL.Query())
		v.ParentOrigin = s.parentOrigin(r.PostFormValue("parent"), embed)
		v.Form = fv
		s.previewInto(r, v, in.Filter, bad)
		s.render(w, http.StatusOK, "subscribe", v)
		return
	}
	out, cerr := s.create(r, in, bad)
	if cerr != nil {
		v := s.subscribeView("Get job alerts by email", embed, r.URL.Query())
		v.ParentOrigin = s.parentOrigin(r.PostFormValue("parent"), embed)
		v.Form = fv
		v.Errors = cerr.fields
		if v.Errors == nil {
			v.Errors = fieldErrors{}
		}
		switch {
		case cerr.status == http.StatusBadRequest:
			v.Alert = "Please correct the fields marked below."
		default:
			v.Alert = cerr.msg
		}
		if cerr.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(cerr.retryAfter.Seconds())))
		}
		s.render(w, cerr.status, "subscribe", v)
		return
	}
	v := s.newView("Check your inbox")
	v.Embed = embed
	v.ParentOrigin = s.parentOrigin(r.PostFormValue("parent"), embed)
	v.Email = in.Email
	v.ValidFor = humanTTL(s.cfg.ConfirmTTL)
	v.Summary = matcher.Summary(in.Filter)
	v.FeedURL, v.TelegramLink, v.Secret = out.FeedURL, out.TelegramLink, out.WebhookSecret
	s.log.Debug("subscribed through the page", "subscription", out.ID)
	s.render(w, http.StatusOK, "inbox", v)
}
