package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jobalert/jobalert/matcher"
	"github.com/jobalert/jobalert/schedule"
	"github.com/jobalert/jobalert/store"
	"github.com/jobalert/jobalert/webhook"
)

// Limits on a subscription's fields, beyond docs/matching.md's rules.
const (
	maxEmailLen   = 254
	maxTextLen    = 200 // keywords and each list entry
	maxListLen    = 50  // entries per list
	maxMinSalary  = 100_000_000
	defaultHour   = 8
	defaultZone   = "UTC"
	defaultFreq   = schedule.Daily
	defaultWeekly = "monday"
)

var weekdays = []string{"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}

// subscriptionInput is a subscription as asked for, before validation.
type subscriptionInput struct {
	Email      string
	Filter     matcher.Filter
	Frequency  string
	Timezone   string
	SendHour   int
	WeeklyDay  string
	WebhookURL string

	// Channels as asked for; ChannelsSet says the client named them (an
	// absent list is email, and webhook with a webhook_url; on the
	// manage page, the channels the subscription has).
	Channels    []string
	ChannelsSet bool
	SlackURL    string
	DiscordURL  string
	// QuietHours is nil for none; QuietSet and CapSet say the client
	// sent the field (the manage form keeps a stored value it lacks).
	QuietHours      *schedule.QuietHours
	QuietSet        bool
	MaxAlertsPerDay int
	CapSet          bool
}

// fieldErrors maps a field's JSON path ("email", "filter.visa_types") to a
// human message about what is wrong with it.
type fieldErrors map[string]string

func (f fieldErrors) add(field, format string, args ...any) {
	if _, ok := f[field]; !ok {
		f[field] = fmt.Sprintf(format, args...)
	}
}

// decodeSubscription reads a POST /v1/subscriptions body. Every field is
// decoded on its own, so the answer names every unknown or mistyped field,
// not only the first. A body that is not a JSON object is reported under
// the key "body".
func decodeSubscription(body []byte) (subscriptionInput, fieldErrors) {
	in := subscriptionInput{Frequency: defaultFreq, Timezone: defaultZone, SendHour: defaultHour}
	bad := fieldErrors{}
	top, ok := object(body, "body", bad)
	if !ok {
		return in, bad
	}
	for _, k := range sortedKeys(top) {
		raw := top[k]
		switch k {
		case "email":
			field(raw, k, &in.Email, "a string", bad)
		case "frequency":
			field(raw, k, &in.Frequency, "a string: instant, daily or weekly", bad)
		case "timezone":
			field(raw, k, &in.Timezone, "a string naming an IANA time zone", bad)
		case "send_hour":
			field(raw, k, &in.SendHour, "a whole number from 0 to 23", bad)
		case "weekly_day":
			field(raw, k, &in.WeeklyDay, "a string: monday to sunday", bad)
		case "webhook_url":
			field(raw, k, &in.WebhookURL, "a string holding an https URL", bad)
		case "channels":
			in.ChannelsSet = field(raw, k, &in.Channels, "a list of channel names: "+strings.Join(store.AllChannels, ", "), bad)
			if in.ChannelsSet && len(in.Channels) == 0 {
				bad.add(k, "must name at least one channel (any of %s); leave it out for email only", strings.Join(store.AllChannels, ", "))
			}
		case "slack_webhook_url":
			field(raw, k, &in.SlackURL, "a string holding a Slack incoming-webhook URL", bad)
		case "discord_webhook_url":
			field(raw, k, &in.DiscordURL, "a string holding a Discord webhook URL", bad)
		case "quiet_hours":
			decodeQuietHours(raw, &in, bad)
		case "max_alerts_per_day":
			in.CapSet = field(raw, k, &in.MaxAlertsPerDay, fmt.Sprintf("a whole number from 0 (unlimited) to %d", schedule.MaxAlertsPerDay), bad)
		case "filter":
			decodeFilter(raw, &in.Filter, bad)
		default:
			bad.add(k, "unknown field")
		}
	}
	if _, ok := top["filter"]; !ok {
		bad.add("filter", "is required: an object with at least one of keywords, visa_types, locations, companies, seniority, tags or min_salary")
	}
	return in, bad
}

// decodeQuietHours reads {"start":"22:00","end":"07:00"}; null is none.
func decodeQuietHours(raw json.RawMessage, in *subscriptionInput, bad fieldErrors) {
	in.QuietSet = true
	if string(bytes.TrimSpace(raw)) == "null" {
		return
	}
	m, ok := object(raw, "quiet_hours", bad)
	if !ok {
		return
	}
	q := &schedule.QuietHours{}
	for _, k := range sortedKeys(m) {
		name := "quiet_hours." + k
		switch k {
		case "start":
			field(m[k], name, &q.Start, "a time of day HH:MM", bad)
		case "end":
			field(m[k], name, &q.End, "a time of day HH:MM", bad)
		default:
			bad.add(name, "unknown field")
		}
	}
	in.QuietHours = q
}

func decodeFilter(raw json.RawMessage, f *matcher.Filter, bad fieldErrors) {
	m, ok := object(raw, "filter", bad)
	if !ok {
		return
	}
	list := "a list of strings"
	for _, k := range sortedKeys(m) {
		raw, name := m[k], "filter."+k
		switch k {
		case "keywords":
			field(raw, name, &f.Keywords, "a string", bad)
		case "exclude_keywords":
			field(raw, name, &f.ExcludeKeywords, list, bad)
		case "visa_types":
			field(raw, name, &f.VisaTypes, list, bad)
		case "locations":
			field(raw, name, &f.Locations, list, bad)
		case "min_salary":
			field(raw, name, &f.MinSalary, "a whole number of US dollars a year", bad)
		case "companies":
			field(raw, name, &f.Companies, list, bad)
		case "exclude_companies":
			field(raw, name, &f.ExcludeCompanies, list, bad)
		case "seniority":
			field(raw, name, &f.Seniority, list, bad)
		case "tags":
			field(raw, name, &f.Tags, list, bad)
		case "include_unknown_visa":
			field(raw, name, &f.IncludeUnknownVisa, "true or false", bad)
		default:
			bad.add(name, "unknown field")
		}
	}
}

// object decodes raw as a JSON object of raw values.
func object(raw []byte, name string, bad fieldErrors) (map[string]json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		bad.add(name, "must be a JSON object")
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		bad.add(name, "is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
		return nil, false
	}
	return m, true
}

// field decodes one value; null leaves the default. It reports whether a
// value was set.
func field(raw json.RawMessage, name string, dst any, want string, bad fieldErrors) bool {
	if string(bytes.TrimSpace(raw)) == "null" {
		return false
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		bad.add(name, "must be %s", want)
		return false
	}
	return true
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validate normalises in and adds a message for each bad field:
// docs/matching.md's filter rules, the schedule, the address, the
// channels and their settings. cur is the stored subscription being
// edited (nil for a new one): its channel URLs stay when the input
// leaves them empty.
func (s *Server) validate(in *subscriptionInput, bad fieldErrors, cur *store.Subscription) {
	checkText(in, bad)
	in.Email = strings.TrimSpace(in.Email)
	if msg := checkEmail(in.Email); msg != "" {
		bad.add("email", "%s", msg)
	}
	validateFilter(&in.Filter, bad)

	in.Frequency = strings.ToLower(strings.TrimSpace(in.Frequency))
	in.Timezone = strings.TrimSpace(in.Timezone)
	in.WeeklyDay = strings.ToLower(strings.TrimSpace(in.WeeklyDay))
	if in.Frequency == schedule.Weekly && in.WeeklyDay == "" {
		in.WeeklyDay = defaultWeekly
	}
	spec := schedule.Spec{Frequency: in.Frequency, Timezone: in.Timezone, SendHour: in.SendHour, WeeklyDay: in.WeeklyDay}
	for k, msg := range spec.Validate() {
		bad.add(k, "%s", msg)
	}
	if in.WeeklyDay != "" && !contains(weekdays, in.WeeklyDay) {
		bad.add("weekly_day", "must be a day of the week, monday to sunday")
	}

	in.WebhookURL = strings.TrimSpace(in.WebhookURL)
	if in.WebhookURL != "" {
		if s.deps.Webhooks == nil {
			bad.add("webhook_url", "webhooks are not enabled on this server")
		} else if err := webhook.ValidateURL(in.WebhookURL, s.cfg.WebhookAllowPrivate); err != nil {
			bad.add("webhook_url", "%s", strings.TrimPrefix(err.Error(), webhook.ErrInvalidURL.Error()+": "))
		}
	}
	s.validateChannels(in, bad, cur)
}

// checkText refuses, in every free-text field, the characters that can
// make text say something else than it shows: control characters
// (Unicode Cc, e.g. CR and LF, which could start a new header or line),
// format characters (Cf, e.g. the bidi override U+202E and zero-width
// characters) and the line and paragraph separators (Zl, Zp), as well as
// bytes that are not UTF-8. This text reaches emails sent to whatever
// address a stranger typed (docs/security.md).
func checkText(in *subscriptionInput, bad fieldErrors) {
	one := func(field, v string) {
		if msg := textProblem(v); msg != "" {
			bad.add(field, "%s", msg)
		}
	}
	one("email", in.Email)
	one("frequency", in.Frequency)
	one("timezone", in.Timezone)
	one("weekly_day", in.WeeklyDay)
	one("webhook_url", in.WebhookURL)
	one("slack_webhook_url", in.SlackURL)
	one("discord_webhook_url", in.DiscordURL)
	for _, c := range in.Channels {
		one("channels", c)
	}
	if q := in.QuietHours; q != nil {
		one("quiet_hours", q.Start)
		one("quiet_hours", q.End)
	}
	f := &in.Filter
	one("filter.keywords", f.Keywords)
	for name, list := range map[string][]string{
		"filter.exclude_keywords": f.ExcludeKeywords, "filter.visa_types": f.VisaTypes, "filter.locations": f.Locations,
		"filter.companies": f.Companies, "filter.exclude_companies": f.ExcludeCompanies, "filter.seniority": f.Seniority,
		"filter.tags": f.Tags,
	} {
		for _, e := range list {
			one(name, e)
		}
	}
}

// textProblem says what is wrong with a piece of user text, or "".
func textProblem(v string) string {
	if !utf8.ValidString(v) {
		return "is not valid UTF-8 text"
	}
	for _, r := range v {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Sprintf("contains a control or invisible formatting character (%U); remove it", r)
		}
	}
	return ""
}

// checkEmail returns what is wrong with an address, or "".
func checkEmail(e string) string {
	if e == "" {
		return "is required"
	}
	const msg = "is not a valid email address (it should look like name@example.com)"
	if len(e) > maxEmailLen {
		return fmt.Sprintf("must be at most %d characters", maxEmailLen)
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Name != "" || a.Address != e {
		return msg
	}
	_, domain, _ := strings.Cut(e, "@")
	if !strings.Contains(domain, ".") || strings.HasSuffix(domain, ".") || strings.HasPrefix(domain, ".") ||
		strings.HasPrefix(domain, "[") {
		return msg
	}
	return ""
}

// validateFilter normalises f (visa aliases to codes, seniority to lower
// case, blank entries dropped) and checks it against docs/matching.md and
// the filter budget.
func validateFilter(f *matcher.Filter, bad fieldErrors) {
	f.Keywords = strings.TrimSpace(f.Keywords)
	if len(f.Keywords) > maxTextLen {
		bad.add("filter.keywords", "must be at most %d characters", maxTextLen)
	}
	lists := []struct {
		name string
		v    *[]string
	}{
		{"exclude_keywords", &f.ExcludeKeywords}, {"visa_types", &f.VisaTypes}, {"locations", &f.Locations},
		{"companies", &f.Companies}, {"exclude_companies", &f.ExcludeCompanies}, {"seniority", &f.Seniority},
		{"tags", &f.Tags},
	}
	for _, l := range lists {
		name := "filter." + l.name
		if len(*l.v) > maxListLen {
			bad.add(name, "must have at most %d entries", maxListLen)
			continue
		}
		var kept []string
		for _, e := range *l.v {
			e = strings.TrimSpace(e)
			switch {
			case len(e) > maxTextLen:
				bad.add(name, "each entry must be at most %d characters", maxTextLen)
			case l.name == "exclude_keywords" && len(matcher.Tokens(e)) == 0:
				bad.add(name, "has an empty entry %q: each entry needs at least one word (or remove it)", e)
			case e != "":
				kept = append(kept, e)
			}
		}
		*l.v = kept
	}

	var unknownVisa []string
	for i, v := range f.VisaTypes {
		code, ok := matcher.CanonicalVisa(v)
		if !ok {
			unknownVisa = append(unknownVisa, fmt.Sprintf("%q", v))
			continue
		}
		f.VisaTypes[i] = code
	}
	if len(unknownVisa) > 0 {
		bad.add("filter.visa_types", "unknown visa type %s; valid codes are %s",
			strings.Join(unknownVisa, ", "), strings.Join(matcher.VisaCodes(), ", "))
	} else {
		f.VisaTypes = dedupe(f.VisaTypes)
	}
	// include_unknown_visa widens a visa clause (docs/matching.md §4a);
	// without one it means nothing, and a form that always sends the box
	// must not be refused for it.
	if len(f.VisaTypes) == 0 {
		f.IncludeUnknownVisa = false
	}

	var unknownLevel []string
	for i, v := range f.Seniority {
		l := strings.ToLower(v)
		if !contains(matcher.SeniorityLevels(), l) {
			unknownLevel = append(unknownLevel, fmt.Sprintf("%q", v))
			continue
		}
		f.Seniority[i] = l
	}
	if len(unknownLevel) > 0 {
		bad.add("filter.seniority", "unknown seniority %s; valid values are %s",
			strings.Join(unknownLevel, ", "), strings.Join(matcher.SeniorityLevels(), ", "))
	} else {
		f.Seniority = dedupe(f.Seniority)
	}

	switch {
	case f.MinSalary < 0:
		bad.add("filter.min_salary", "must be zero or more (US dollars a year)")
	case f.MinSalary > maxMinSalary:
		bad.add("filter.min_salary", "must be at most %d (US dollars a year)", maxMinSalary)
	}

	for k := range bad {
		if strings.HasPrefix(k, "filter") {
			return // the positive-clause check needs a filter that is whole
		}
	}
	c, err := matcher.Compile(*f)
	if err != nil {
		bad.add("filter", "%s", err.Error())
		return
	}
	if !c.HasPositiveClause() {
		bad.add("filter", "needs at least one of keywords, visa types, locations, companies, seniority, tags or a minimum salary: "+
			"without one it would match almost every job")
	}
	// The filter budget (docs/matching.md "Filter budget"): each field over
	// its cap, e.g. "exceeds the filter budget: 30 exclude-keyword tokens,
	// at most 24".
	for _, e := range matcher.CheckBudget(*f) {
		bad.add("filter."+e.Field, "%s", e.Error())
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func dedupe(in []string) []string {
	var out []string
	for _, v := range in {
		if !contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
