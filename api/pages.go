package api

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/templates"
)

// Page templates under templates/web, each rendered inside web/layout.html
// with the shared form fields of web/fields.html.
var pageNames = []string{"subscribe", "inbox", "confirm", "message", "unsubscribe", "manage", "action"}

// Static files under templates/web served at /static/.
var staticFiles = map[string]string{
	"style.css": "text/css; charset=utf-8",
	"tz.js":     "text/javascript; charset=utf-8",
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
	return &view{
		Product: s.cfg.Product, Title: title, Errors: fieldErrors{},
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
		IncludeUnknownVisa: f.IncludeUnknownVisa,
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
		Email:           strings.TrimSpace(r.PostFormValue("email")),
		Keywords:        r.PostFormValue("keywords"),
		ExcludeKeywords: r.PostFormValue("exclude_keywords"),
		Visa:            map[string]bool{}, Seniority: map[string]bool{},
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
	}
	in := subscriptionInput{
		Email: fv.Email, Frequency: fv.Frequency, Timezone: fv.Timezone, WeeklyDay: fv.WeeklyDay,
		Filter: matcher.Filter{
			Keywords: fv.Keywords, ExcludeKeywords: splitLines(fv.ExcludeKeywords), Locations: splitLines(fv.Locations),
			Companies: splitLines(fv.Companies), ExcludeCompanies: splitLines(fv.ExcludeCompanies), Tags: splitLines(fv.Tags),
			IncludeUnknownVisa: fv.IncludeUnknownVisa,
		},
	}
	for _, v := range r.PostForm["visa_types"] {
		fv.Visa[v] = true
		in.Filter.VisaTypes = append(in.Filter.VisaTypes, v)
	}
	for _, v := range r.PostForm["seniority"] {
		fv.Seniority[v] = true
		in.Filter.Seniority = append(in.Filter.Seniority, v)
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
	h, err := strconv.Atoi(r.PostFormValue("send_hour"))
	if err != nil {
		bad.add("send_hour", "must be an hour from 0 to 23")
	}
	in.SendHour, fv.SendHour = h, h
	if in.Frequency == "" {
		in.Frequency = defaultFreq
	}
	if in.Timezone == "" {
		in.Timezone = defaultZone
	}
	if in.Frequency != schedule.Weekly {
		in.WeeklyDay = "" // the select always posts a day; it matters only for weekly
	}
	return in, fv
}

// subscribePage is GET /: the subscription form.
func (s *Server) subscribePage(w http.ResponseWriter, r *http.Request) {
	v := s.newView("Get job alerts by email")
	v.TZScript = true
	v.Form = formValues{Frequency: defaultFreq, Timezone: defaultZone, SendHour: defaultHour, WeeklyDay: defaultWeekly,
		AutoTZ: true, Visa: map[string]bool{}, Seniority: map[string]bool{}}
	s.render(w, http.StatusOK, "subscribe", v)
}

// subscribeForm is POST /: the form's submission. Errors come back next to
// their fields with the values kept; success shows "check your inbox".
func (s *Server) subscribeForm(w http.ResponseWriter, r *http.Request) {
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
	out, cerr := s.create(r, in, bad)
	if cerr != nil {
		v := s.newView("Get job alerts by email")
		v.TZScript = true
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
	v.Email = in.Email
	v.ValidFor = humanTTL(s.cfg.ConfirmTTL)
	v.Summary = matcher.Summary(in.Filter)
	s.log.Debug("subscribed through the page", "subscription", out.ID)
	s.render(w, http.StatusOK, "inbox", v)
}
