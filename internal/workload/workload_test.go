package workload_test

import (
	"testing"

	"github.com/jobalert/jobalert/internal/workload"
	"github.com/jobalert/jobalert/matcher"
)

// TestGenDistributions checks the shape the docs promise on a sample.
func TestGenDistributions(t *testing.T) {
	g, err := workload.NewGenerator("popular", 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4000
	var remote, visa, h1b, hourly, salaried int
	for i := range n {
		j := g.Job(i)
		if j.Workplace == "remote" {
			remote++
		}
		if len(j.VisaTypes) > 0 {
			visa++
			if c, _ := matcher.CanonicalVisa(j.VisaTypes[0]); c == "H-1B" {
				h1b++
			}
		}
		if j.Salary != nil {
			salaried++
			if j.Salary.Period == "hour" {
				hourly++
			}
		}
	}
	check := func(name string, got, lo, hi float64) {
		t.Helper()
		if got < lo || got > hi {
			t.Errorf("%s: got %.3f want in [%.2f, %.2f]", name, got, lo, hi)
		}
	}
	check("remote share", float64(remote)/n, 0.25, 0.35)
	check("jobs with visa", float64(visa)/n, 0.30, 0.40)
	check("H-1B share of visa jobs", float64(h1b)/float64(visa), 0.85, 0.95)
	check("hourly share of salaries", float64(hourly)/float64(salaried), 0.10, 0.20)
	if _, err := workload.NewGenerator("bogus", 1); err == nil {
		t.Errorf("NewGenerator(bogus): got nil want an error")
	}
}
