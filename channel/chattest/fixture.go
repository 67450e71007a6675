package chattest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jobalert/jobalert/channel"
	"github.com/jobalert/jobalert/matcher"
)

// Digest returns a message of n jobs built to push every limit: long
// titles and company names, many visa codes, unicode (emoji, CJK,
// combining marks), the characters each markup escapes (& < > * _ |),
// mentions, a few URLs that grow fivefold when escaped, and every third job without visa codes ("Sponsorship not
// stated").
func Digest(n int) channel.Message {
	m := channel.Message{
		Kind: channel.Alert, Frequency: "daily",
		Filter:         matcher.Filter{Keywords: "backend engineer", VisaTypes: []string{"H-1B"}},
		ManageURL:      "https://jobs.example.com/v1/manage?token=m_abc&x=<1>",
		UnsubscribeURL: "https://jobs.example.com/v1/unsubscribe?token=u_abc",
		MoreURL:        "https://jobs.example.com/v1/manage?token=m_abc#matches",
	}
	visas := []string{"H-1B", "TN", "O-1A", "E-3", "L-1", "H-1B1", "EB-2", "EB-3", "F-1 OPT", "STEM OPT", "Blue Card", "Skilled Worker"}
	for i := range n {
		title := fmt.Sprintf("Senior Backend Engineer %d — Payments & <Ledger> *Platform* _Team_ | 🚀 数据平台 Zürich naïve ", i)
		title += strings.Repeat("distributed-systems ", i%7*20) // some titles far past every limit
		j := channel.Job{
			ID:        fmt.Sprintf("job-%04d", i),
			Title:     title,
			URL:       fmt.Sprintf("https://careers.example.com/jobs/%d?src=alert&utm=<x>|y", i),
			Company:   "ACME & Sons <Holdings> " + strings.Repeat("Überweisungs-GmbH ", i%3*30) + "@everyone",
			Locations: []string{"Seattle, WA, US", "Zürich, CH", "東京, JP", strings.Repeat("Remote anywhere ", i%4*20)},
			Workplace: "Hybrid",
			Salary:    "$115,000–$160,000 a year",
			Seniority: "Senior",
			PostedAt:  time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC).Add(-time.Duration(i) * time.Hour),
		}
		if i%50 == 7 { // a URL that grows fivefold when escaped
			j.URL = "https://careers.example.com/j?" + strings.Repeat("&\"", 700)
		}
		if i%3 != 2 {
			for k := 0; k < 1+i%len(visas); k++ {
				j.VisaCodes = append(j.VisaCodes, visas[k])
			}
			if i%5 == 0 {
				j.VisaCodes = append(j.VisaCodes, strings.Repeat("X-VISA-", 200))
			}
		}
		m.Jobs = append(m.Jobs, j)
	}
	return m
}

// Sleeper records the waits a sender asks for and, instead of waiting,
// moves Clock (when set) forward by them.
type Sleeper struct {
	Advance func(time.Duration) // e.g. (*clock.Fake).Advance; nil: nothing moves

	mu     sync.Mutex
	waited []time.Duration
}

// Sleep is a channel.Sleep.
func (s *Sleeper) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waited = append(s.waited, d)
	s.mu.Unlock()
	if s.Advance != nil {
		s.Advance(d)
	}
	return ctx.Err()
}

// Waited returns the waits asked for so far.
func (s *Sleeper) Waited() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waited...)
}
