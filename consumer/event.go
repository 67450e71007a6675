// Package consumer reads job events from the JetStream stream JOBS through
// the durable pull consumer every replica shares: it decodes and validates
// each event (docs/matching.md §2), matches it, hands the batch to a
// Recorder that writes it durably, and only then acks. Poison events are
// copied with their reason to JOBS_DLQ and terminated; transient failures
// are naked with a delay, so nothing is ever lost.
package consumer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

// Limits applied by DecodeEvent.
const (
	MaxBody        = 64 << 10 // bytes of an event body
	MaxDescription = 4 << 10  // bytes of description kept; the rest is cut
	MaxID          = 200      // bytes of a job id
	MaxURL         = 2048     // bytes of a job url

	// Further bounds, chosen so that a decoded job re-encodes within
	// MaxBody even when every character needs escaping. Longer strings are
	// cut on a rune boundary; longer lists are an error.
	maxText      = 500 // title, company
	maxLocation  = 200 // each location
	maxTag       = 100 // each tag
	maxVisa      = 100 // each visa value (before canonicalisation)
	maxShort     = 50  // seniority, currency, period, workplace
	maxLocations = 50
	maxTags      = 100
	maxVisas     = 50
)

// Subjects of the events; every other subject under jobs.> is poison.
const (
	SubjectCreated = "jobs.created"
	SubjectUpdated = "jobs.updated"
	SubjectClosed  = "jobs.closed"
)

// KindOf returns the kind carried by subject, or an error wrapping
// ErrPoison when the subject is not one of the three event subjects.
func KindOf(subject string) (jobevent.Kind, error) {
	switch subject {
	case SubjectCreated:
		return jobevent.Created, nil
	case SubjectUpdated:
		return jobevent.Updated, nil
	case SubjectClosed:
		return jobevent.Closed, nil
	}
	return 0, poisonf("subject %q: not an event subject (want %s, %s or %s)",
		subject, SubjectCreated, SubjectUpdated, SubjectClosed)
}

// ErrPoison marks an event that can never be processed: every error
// DecodeEvent and DecodeJobLine return wraps it. Poison is permanent, so the
// message is terminated and copied to the DLQ rather than retried.
var ErrPoison = errors.New("poison event")

// FieldError says which field of an event is invalid and why; it wraps
// ErrPoison. Its message reads `field "title": required`.
type FieldError struct {
	Field  string // JSON name; nested fields are dotted ("salary.min")
	Reason string
}

func (e *FieldError) Error() string { return fmt.Sprintf("field %q: %s", e.Field, e.Reason) }

// Unwrap returns ErrPoison.
func (e *FieldError) Unwrap() error { return ErrPoison }

type poisonError struct{ msg string }

func (e *poisonError) Error() string { return e.msg }
func (e *poisonError) Unwrap() error { return ErrPoison }

func poisonf(format string, args ...any) error {
	return &poisonError{msg: fmt.Sprintf(format, args...)}
}

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// wireJob is the body as it arrives. Fields that need their own checks
// (time, workplace) are strings here; type mismatches surface as
// json.UnmarshalTypeError naming the field.
type wireJob struct {
	ID          string      `json:"id"`
	Title       string      `json:"title"`
	Company     string      `json:"company"`
	Locations   []string    `json:"locations"`
	Workplace   string      `json:"workplace"`
	VisaTypes   []string    `json:"visa_types"`
	Salary      *wireSalary `json:"salary"`
	Seniority   string      `json:"seniority"`
	Tags        []string    `json:"tags"`
	URL         string      `json:"url"`
	PostedAt    string      `json:"posted_at"`
	Description string      `json:"description"`
	// VisaSponsorship and CanonicalID: docs/events.md, docs/matching.md §4a.
	VisaSponsorship string `json:"visa_sponsorship"`
	CanonicalID     string `json:"canonical_id"`
}

type wireSalary struct {
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	Currency string  `json:"currency"`
	Period   string  `json:"period"`
}

type wireClosed struct {
	ID string `json:"id"`
}

// DecodeEvent decodes and validates the body of an event received on
// subject. It returns an error wrapping ErrPoison (a *FieldError when one
// field is at fault) when the subject is not an event subject, the body is
// larger than MaxBody, is not one JSON object, lacks a required field (id,
// title, company; a closed event needs only id) or has a field of the wrong
// type or form. Unknown fields are ignored; strings are trimmed and bounded,
// the description is cut to MaxDescription bytes, visa aliases are
// canonicalised and unknown visa values are reported in Event.Dropped.
func DecodeEvent(subject string, data []byte) (jobevent.Event, error) {
	kind, err := KindOf(subject)
	if err != nil {
		return jobevent.Event{}, err
	}
	ev := jobevent.Event{Kind: kind, Subject: subject}
	if kind == jobevent.Closed {
		var w wireClosed
		if err := unmarshalObject(data, &w); err != nil {
			return jobevent.Event{}, err
		}
		id, err := cleanID(w.ID)
		if err != nil {
			return jobevent.Event{}, err
		}
		ev.Job.ID = id
		return ev, nil
	}
	ev.Job, ev.Dropped, err = decodeJob(data)
	if err != nil {
		return jobevent.Event{}, err
	}
	return ev, nil
}

// DecodeJobLine decodes one line of a JSONL job file with the rules of a
// jobs.created event. Unknown visa values are dropped. Errors wrap ErrPoison.
func DecodeJobLine(line []byte) (matcher.Job, error) {
	j, _, err := decodeJob(line)
	return j, err
}

func decodeJob(data []byte) (matcher.Job, []string, error) {
	var w wireJob
	if err := unmarshalObject(data, &w); err != nil {
		return matcher.Job{}, nil, err
	}
	var (
		j       matcher.Job
		dropped []string
		err     error
	)
	if j.ID, err = cleanID(w.ID); err != nil {
		return matcher.Job{}, nil, err
	}
	if j.Title = cleanLine(w.Title, maxText); j.Title == "" {
		return matcher.Job{}, nil, fieldErr("title", "required")
	}
	if j.Company = cleanLine(w.Company, maxText); j.Company == "" {
		return matcher.Job{}, nil, fieldErr("company", "required")
	}
	if j.Locations, err = cleanList("locations", w.Locations, maxLocations, maxLocation); err != nil {
		return matcher.Job{}, nil, err
	}
	if j.Tags, err = cleanList("tags", w.Tags, maxTags, maxTag); err != nil {
		return matcher.Job{}, nil, err
	}
	if j.Workplace, err = cleanWorkplace(w.Workplace); err != nil {
		return matcher.Job{}, nil, err
	}
	if j.VisaTypes, dropped, err = cleanVisas(w.VisaTypes); err != nil {
		return matcher.Job{}, nil, err
	}
	if w.Salary != nil {
		j.Salary = &matcher.Salary{
			Min:      w.Salary.Min,
			Max:      w.Salary.Max,
			Currency: cleanLine(w.Salary.Currency, maxShort),
			Period:   cleanLine(w.Salary.Period, maxShort),
		}
	}
	j.Seniority = cleanLine(w.Seniority, maxShort)
	if j.URL, err = cleanURL(w.URL); err != nil {
		return matcher.Job{}, nil, err
	}
	if j.PostedAt, err = cleanTime(w.PostedAt); err != nil {
		return matcher.Job{}, nil, err
	}
	j.Description = cleanText(w.Description, MaxDescription)
	if j.VisaSponsorship, err = cleanSponsorship(w.VisaSponsorship); err != nil {
		return matcher.Job{}, nil, err
	}
	if strings.TrimSpace(w.CanonicalID) != "" {
		if j.CanonicalID, err = cleanIDField("canonical_id", w.CanonicalID); err != nil {
			return matcher.Job{}, nil, err
		}
	}
	return j, dropped, nil
}

// unmarshalObject checks the size and shape of data and decodes it into v,
// turning encoding/json's errors into poison errors that name the field.
func unmarshalObject(data []byte, v any) error {
	if len(data) > MaxBody {
		return poisonf("body: %d bytes, larger than the %d KiB limit", len(data), MaxBody>>10)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return poisonf("body: empty, want a JSON object")
	}
	if trimmed[0] != '{' {
		return poisonf("body: want a JSON object")
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fieldErr(te.Field, "%s", typeReason(te))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return poisonf("body: invalid JSON at offset %d: %v", se.Offset, se)
	}
	return poisonf("body: invalid JSON: %v", err)
}

func typeReason(te *json.UnmarshalTypeError) string {
	if strings.HasPrefix(te.Value, "number ") {
		return "number out of range"
	}
	switch te.Field {
	case "locations", "visa_types", "tags":
		return "want an array of strings, got " + te.Value
	case "salary":
		return "want an object, got " + te.Value
	}
	switch te.Type.Kind() {
	case reflect.Float64:
		return "want a number, got " + te.Value
	case reflect.String:
		return "want a string, got " + te.Value
	}
	return "want " + te.Type.String() + ", got " + te.Value
}

func cleanID(s string) (string, error) { return cleanIDField("id", s) }

// cleanIDField checks a job id in the field named (id, canonical_id).
func cleanIDField(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fieldErr(field, "required")
	case len(s) > MaxID:
		return "", fieldErr(field, "%d bytes, longer than %d", len(s), MaxID)
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", fieldErr(field, "contains a control character")
	case !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError):
		return "", fieldErr(field, "not valid UTF-8")
	}
	return s, nil
}

// Sponsorships are the accepted visa_sponsorship values (docs/matching.md §4a).
var Sponsorships = []string{matcher.SponsorshipYes, matcher.SponsorshipNo, matcher.SponsorshipUnknown}

// cleanSponsorship accepts a visa_sponsorship value in any case and
// returns it in lower case; "" is absent.
func cleanSponsorship(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	for _, v := range Sponsorships {
		if strings.EqualFold(s, v) {
			return v, nil
		}
	}
	return "", fieldErr("visa_sponsorship", "%q is not one of %s", cleanLine(s, maxShort), strings.Join(Sponsorships, ", "))
}

// cleanLine makes s a single trimmed line of at most max bytes: control
// characters become spaces, and a longer value is cut on a rune boundary.
// It is idempotent.
func cleanLine(s string, max int) string {
	if strings.ContainsFunc(s, unicode.IsControl) {
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, s)
	}
	return strings.TrimSpace(truncate(strings.TrimSpace(s), max))
}

// cleanText is cleanLine for multi-line text: newlines and tabs are kept.
func cleanText(s string, max int) string {
	if strings.ContainsFunc(s, isStrayControl) {
		s = strings.Map(func(r rune) rune {
			if isStrayControl(r) {
				return ' '
			}
			return r
		}, s)
	}
	return strings.TrimSpace(truncate(strings.TrimSpace(s), max))
}

func isStrayControl(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }

// truncate cuts s to at most max bytes without splitting a rune.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func cleanList(field string, in []string, maxLen, maxEach int) ([]string, error) {
	if len(in) > maxLen {
		return nil, fieldErr(field, "%d entries, more than %d", len(in), maxLen)
	}
	var out []string
	for _, s := range in {
		if s = cleanLine(s, maxEach); s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func cleanWorkplace(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	for _, w := range matcher.Workplaces {
		if strings.EqualFold(s, w) {
			return w, nil
		}
	}
	return "", fieldErr("workplace", "%q is not one of %s", cleanLine(s, maxShort),
		strings.Join(matcher.Workplaces, ", "))
}

// cleanVisas canonicalises visa values; unknown ones are returned as
// dropped, duplicates are removed.
func cleanVisas(in []string) (codes, dropped []string, err error) {
	if len(in) > maxVisas {
		return nil, nil, fieldErr("visa_types", "%d entries, more than %d", len(in), maxVisas)
	}
	for _, v := range in {
		v = cleanLine(v, maxVisa)
		if v == "" {
			continue
		}
		code, ok := matcher.CanonicalVisa(v)
		if !ok {
			dropped = append(dropped, v)
			continue
		}
		if !contains(codes, code) {
			codes = append(codes, code)
		}
	}
	return codes, dropped, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func cleanURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if len(s) > MaxURL {
		return "", fieldErr("url", "%d bytes, longer than %d", len(s), MaxURL)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return "", fieldErr("url", "contains white space or a control character")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fieldErr("url", "want an absolute http or https URL")
	}
	return s, nil
}

func cleanTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fieldErr("posted_at", "want an RFC 3339 time such as 2026-11-26T10:00:00Z")
	}
	t = t.UTC()
	if y := t.Year(); y < 1 || y > 9999 {
		return time.Time{}, fieldErr("posted_at", "year out of range")
	}
	return t, nil
}
