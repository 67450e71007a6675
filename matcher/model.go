package matcher

import (
	"strings"
	"time"
)

// Salary is a job's pay range as the event gives it. Min or Max of 0 or less
// counts as absent; Currency defaults to USD and Period to year.
type Salary struct {
	Min      float64 `json:"min,omitempty"`
	Max      float64 `json:"max,omitempty"`
	Currency string  `json:"currency,omitempty"`
	Period   string  `json:"period,omitempty"`
}

// Job is one job posting, as carried by a jobs.created or jobs.updated event.
type Job struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Company     string    `json:"company"`
	Locations   []string  `json:"locations,omitempty"`
	Workplace   string    `json:"workplace,omitempty"`
	VisaTypes   []string  `json:"visa_types,omitempty"`
	Salary      *Salary   `json:"salary,omitempty"`
	Seniority   string    `json:"seniority,omitempty"`
	Tags        []string  `json:"tags,omitempty"`
	URL         string    `json:"url,omitempty"`
	PostedAt    time.Time `json:"posted_at,omitzero"`
	Description string    `json:"description,omitempty"`
	// VisaSponsorship is what the posting says about sponsorship: "yes",
	// "no", "unknown", or "" for not given (see Sponsorship).
	VisaSponsorship string `json:"visa_sponsorship,omitempty"`
	// CanonicalID is the producer's id of the role this posting is one
	// of (a repost or cross-post names the original); "" when not given.
	CanonicalID string `json:"canonical_id,omitempty"`
}

// The values of Job.VisaSponsorship (docs/matching.md §4a).
const (
	SponsorshipYes     = "yes"
	SponsorshipNo      = "no"
	SponsorshipUnknown = "unknown"
)

// Sponsorship returns the job's effective sponsorship (docs/matching.md
// §4a): VisaSponsorship when it is "yes", "no" or "unknown" (any case),
// otherwise "yes" when the job lists visa types and "unknown" when not.
func (j *Job) Sponsorship() string {
	// EqualFold, not lower-casing: Match allocates nothing.
	switch s := j.VisaSponsorship; {
	case strings.EqualFold(s, SponsorshipYes):
		return SponsorshipYes
	case strings.EqualFold(s, SponsorshipNo):
		return SponsorshipNo
	case strings.EqualFold(s, SponsorshipUnknown):
		return SponsorshipUnknown
	}
	if len(j.VisaTypes) > 0 {
		return SponsorshipYes
	}
	return SponsorshipUnknown
}

// Filter is a subscriber's saved search: the clauses of docs/matching.md §3.
// A zero field is an absent clause.
type Filter struct {
	Keywords         string   `json:"keywords,omitempty"`
	ExcludeKeywords  []string `json:"exclude_keywords,omitempty"`
	VisaTypes        []string `json:"visa_types,omitempty"`
	Locations        []string `json:"locations,omitempty"`
	MinSalary        int64    `json:"min_salary,omitempty"`
	Companies        []string `json:"companies,omitempty"`
	ExcludeCompanies []string `json:"exclude_companies,omitempty"`
	Seniority        []string `json:"seniority,omitempty"`
	Tags             []string `json:"tags,omitempty"`
	// IncludeUnknownVisa widens a visa_types clause to jobs whose
	// sponsorship is unknown (docs/matching.md §4a); without visa_types it
	// changes nothing.
	IncludeUnknownVisa bool `json:"include_unknown_visa,omitempty"`
}

// AnnualUSD returns the salary figure that a min_salary clause compares
// (docs/matching.md §5): the annualised max, or min where max is absent, in USD.
// It returns false when the salary is absent, not in USD, or has an unknown
// period.
func (s *Salary) AnnualUSD() (float64, bool) {
	if s == nil {
		return 0, false
	}
	if s.Currency != "" && lowerRunes(s.Currency) != "usd" {
		return 0, false
	}
	period := "year"
	if s.Period != "" {
		period = lowerRunes(s.Period)
	}
	factor, ok := periodFactor[period]
	if !ok {
		return 0, false
	}
	v := s.Max
	if v <= 0 {
		v = s.Min
	}
	if v <= 0 {
		return 0, false
	}
	return v * factor, true
}

// PreparedJob is a job normalised once for matching.
type PreparedJob struct {
	TitleTokens []string   // tokens(title) and adjacent joins, no duplicates
	Company     string     // key(company)
	Locations   [][]string // key components of each location
	Remote      bool       // workplace is remote
	Visa        uint16     // bit set of canonical visa codes (visaCodes order), and unknownVisaBit
	AnnualUSD   float64    // the figure min_salary compares
	HasSalary   bool       // AnnualUSD is usable
	Seniority   uint8      // one bit of seniorityLevels, or 0
	Tags        []string   // key of each tag, empty keys dropped
}

// Prepare normalises a job for matching. Unknown visa values and seniority
// are left out, as docs/matching.md §4 and §6 say.
func Prepare(j *Job) *PreparedJob {
	p := &PreparedJob{
		TitleTokens: TitleTokens(j.Title),
		Company:     Key(j.Company),
		Remote:      lowerRunes(j.Workplace) == "remote",
	}
	for _, l := range j.Locations {
		if c := KeyComponents(l); len(c) > 0 {
			p.Locations = append(p.Locations, c)
		}
	}
	p.Visa = jobVisaBits(j, func(v string) uint16 {
		bit, _ := visaBit(v)
		return bit
	})
	p.AnnualUSD, p.HasSalary = j.Salary.AnnualUSD()
	if j.Seniority != "" {
		p.Seniority, _ = seniorityBit(j.Seniority)
	}
	for _, t := range j.Tags {
		if k := Key(t); k != "" {
			p.Tags = append(p.Tags, k)
		}
	}
	return p
}

// HasTitleToken reports whether t is one of the job's title tokens.
func (p *PreparedJob) HasTitleToken(t string) bool {
	for _, x := range p.TitleTokens {
		if x == t {
			return true
		}
	}
	return false
}

// jobVisaBits returns the visa bits a job offers to a visa clause
// (docs/matching.md §4a): none when its sponsorship is "no"; the bits of its
// visa types, plus unknownVisaBit when its sponsorship is unknown. bit
// returns a value's bit or 0.
func jobVisaBits(j *Job, bit func(string) uint16) uint16 {
	s := j.Sponsorship()
	if s == SponsorshipNo {
		return 0
	}
	var m uint16
	for _, v := range j.VisaTypes {
		m |= bit(v)
	}
	if s == SponsorshipUnknown {
		m |= unknownVisaBit
	}
	return m
}
