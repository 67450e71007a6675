package consumer_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/jobalert/jobalert/consumer"
)

func TestCheck(t *testing.T) {
	in := strings.Join([]string{
		jobBody("j1", "Backend Engineer"),
		``,
		`{"id":"j2","company":"Acme"}`,
		`{"id":"j3","title":"SRE","company":"Acme","salary":{"min":"lots"}}`,
		`not json`,
		`{"id":"j4","title":"SRE","company":"Acme","workplace":"moon"}`,
		`{"id":"j5","title":"SRE","company":"Acme","visa_types":["H1B","Schengen"],"seniority":"Lead","salary":{"max":90,"period":"hourly"},"visa_type":["TN"]}`,
		`{"id":"j6","title":"Go Developer","company":"Acme","visa_type":["TN"],"salary":{"max":1,"amount":2}}`,
		`{"id":"j1","title":"Backend Engineer","company":"Acme"}`,
		`{"id":"j7","title":"t","company":"c","description":"` + strings.Repeat("x", consumer.MaxBody) + `"}`,
		`   `,
		`{"id":"j8","title":"t","company":"c","posted_at":"yesterday"}`, // no newline at the end
	}, "\n")
	var got []string
	res, err := consumer.Check(strings.NewReader(in), consumer.SubjectCreated, func(f consumer.Finding) { got = append(got, f.String()) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`line 3: field "title": required`,
		`line 4: field "salary.min": want a number, got string`,
		`line 5: body: want a JSON object`,
		`line 6: field "workplace": "moon" is not one of onsite, hybrid, remote`,
		`line 7: warning: field "visa_type" is not read by jobalert; ignored (reported once)`,
		`line 7: warning: field "visa_types": "Schengen" is not a visa code (docs/matching.md §4); dropped`,
		`line 7: warning: field "seniority": "Lead" is not one of intern, junior, mid, senior, staff, principal, manager, director; treated as absent`,
		`line 7: warning: field "salary.period": "hourly" is not one of year, month, week, day, hour; the salary is never compared`,
		`line 8: warning: field "salary.amount" is not read by jobalert; ignored (reported once)`,
		`line 9: warning: field "id": "j1" repeats line 1; published with the same Nats-Msg-Id, the stream keeps only the first within its 2m0s duplicate window`,
		`line 10: body: longer than the 64 KiB limit`,
		`line 12: field "posted_at": want an RFC 3339 time such as 2026-11-26T10:00:00Z`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if wantRes := (consumer.CheckResult{Events: 10, Invalid: 6, Warnings: 6}); res != wantRes {
		t.Errorf("got %+v, want %+v", res, wantRes)
	}
}

// Check decodes with the subject's rules: a jobs.closed event needs only
// its id, and every other field is ignored.
func TestCheckClosed(t *testing.T) {
	var got []string
	res, err := consumer.Check(strings.NewReader(`{"id":"j1"}`+"\n"+`{"id":" "}`+"\n"+jobBody("j2", "SRE")+"\n"),
		consumer.SubjectClosed, func(f consumer.Finding) { got = append(got, f.String()) })
	want := []string{
		`line 2: field "id": required`,
		`line 3: warning: field "company" is not read by jobalert; ignored (reported once)`,
		`line 3: warning: field "title" is not read by jobalert; ignored (reported once)`,
	}
	if err != nil || !slices.Equal(got, want) || res != (consumer.CheckResult{Events: 3, Invalid: 1, Warnings: 2}) {
		t.Errorf("got %v %+v %q, want no error, %q", err, res, got, want)
	}
}

func TestCheckErrors(t *testing.T) {
	if _, err := consumer.Check(strings.NewReader(""), "jobs.reopened", func(consumer.Finding) {}); !errors.Is(err, consumer.ErrPoison) {
		t.Errorf("unknown subject: got %v, want a poison error", err)
	}
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader(jobBody("j1", "SRE")+"\n"), iotest.ErrReader(boom))
	res, err := consumer.Check(r, consumer.SubjectCreated, func(consumer.Finding) {})
	if !errors.Is(err, boom) || err.Error() != "read line 2: boom" || res.Events != 1 {
		t.Errorf("read error: got %+v %v, want 1 event and read line 2: boom", res, err)
	}
	res, err = consumer.Check(strings.NewReader(""), consumer.SubjectCreated, func(consumer.Finding) {})
	if err != nil || res != (consumer.CheckResult{}) {
		t.Errorf("empty input: got %+v %v, want nothing", res, err)
	}
}
