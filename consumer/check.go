package consumer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

// Finding is what Check says about one line of a JSONL event file: either
// the line is poison (Err, DecodeEvent's error: a *FieldError names the
// field) or it is accepted with a Warning (a value dropped, a field
// ignored, an id repeated).
type Finding struct {
	Line    int
	Err     error
	Warning string
}

func (f Finding) String() string {
	if f.Err != nil {
		return fmt.Sprintf("line %d: %v", f.Line, f.Err)
	}
	return fmt.Sprintf("line %d: warning: %s", f.Line, f.Warning)
}

// CheckResult counts what Check read.
type CheckResult struct {
	Events   int // non-blank lines
	Invalid  int // lines DecodeEvent refuses (they would go to JOBS_DLQ)
	Warnings int
}

// Check reads JSONL events from r the way Publish does (one JSON object a
// line, blank lines skipped) and decodes each with DecodeEvent(subject,
// line), the consumer's own check, publishing nothing. It calls report for
// every invalid line and every warning, in line order, and reads to the
// end: a line longer than MaxBody is reported and skipped. Warnings are
// for events the consumer accepts in part: unknown visa values (dropped),
// an unknown seniority or salary period (treated as absent), fields it
// does not read (reported once per name) and an id that an earlier line
// has (Publish sends both with the same Nats-Msg-Id, so the stream keeps
// only the first within its duplicate window). The error is for an unknown
// subject or a failure to read r.
func Check(r io.Reader, subject string, report func(Finding)) (CheckResult, error) {
	var res CheckResult
	if _, err := KindOf(subject); err != nil {
		return res, err
	}
	firstLine := map[string]int{} // job id -> the line it was first seen on
	ignored := map[string]bool{}  // ignored fields already reported
	warn := func(line int, format string, args ...any) {
		res.Warnings++
		report(Finding{Line: line, Warning: fmt.Sprintf(format, args...)})
	}
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		// MaxBody+1 as in Publish: DecodeEvent checks the trimmed size.
		raw, tooLong, err := readLine(br, MaxBody+1)
		if err != nil && !errors.Is(err, io.EOF) {
			return res, fmt.Errorf("read line %d: %w", line, err)
		}
		eof := err != nil
		raw = bytes.TrimSpace(raw)
		switch {
		case tooLong:
			res.Events++
			res.Invalid++
			report(Finding{Line: line, Err: poisonf("body: longer than the %d KiB limit", MaxBody>>10)})
		case len(raw) > 0:
			res.Events++
			ev, err := DecodeEvent(subject, raw)
			if err != nil {
				res.Invalid++
				report(Finding{Line: line, Err: err})
				break
			}
			for _, f := range IgnoredFields(subject, raw) {
				if !ignored[f] {
					ignored[f] = true
					warn(line, "field %q is not read by jobalert; ignored (reported once)", f)
				}
			}
			for _, v := range ev.Dropped {
				warn(line, "field %q: %q is not a visa code (docs/matching.md §4); dropped", "visa_types", v)
			}
			warnValues(line, ev, warn)
			if first, ok := firstLine[ev.Job.ID]; ok {
				warn(line, "field %q: %q repeats line %d; published with the same Nats-Msg-Id, the stream keeps only the first within its %v duplicate window",
					"id", ev.Job.ID, first, DuplicateWindow)
			} else {
				firstLine[ev.Job.ID] = line
			}
		}
		if eof {
			return res, nil
		}
	}
}

// warnValues warns about the values DecodeEvent keeps but the matcher
// treats as absent (docs/matching.md §5, §6).
func warnValues(line int, ev jobevent.Event, warn func(int, string, ...any)) {
	if ev.Kind == jobevent.Closed {
		return
	}
	j := ev.Job
	if j.Seniority != "" && !slices.ContainsFunc(matcher.SeniorityLevels(), func(s string) bool { return strings.EqualFold(s, j.Seniority) }) {
		warn(line, "field %q: %q is not one of %s; treated as absent", "seniority", j.Seniority, strings.Join(matcher.SeniorityLevels(), ", "))
	}
	if s := j.Salary; s != nil && s.Period != "" {
		if _, ok := (&matcher.Salary{Max: 1, Period: s.Period}).AnnualUSD(); !ok {
			warn(line, "field %q: %q is not one of year, month, week, day, hour; the salary is never compared", "salary.period", s.Period)
		}
	}
}

// readLine reads one line (without its end) from br. A line longer than
// max bytes is read to its end and discarded: tooLong is true and line is
// nil. At the end of the input it returns what is left with io.EOF.
func readLine(br *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !tooLong && len(line)+len(chunk) > max+1 { // +1: the line's '\n'
			tooLong, line = true, nil
		}
		if !tooLong {
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) > max {
			tooLong, line = true, nil
		}
		return line, tooLong, err
	}
}

// IgnoredFields returns the fields of an event body that DecodeEvent does
// not read on subject: top-level ones, and those of salary as
// "salary.<name>". Field names match as encoding/json matches them
// (case-insensitively). It returns nil when data is not a JSON object.
func IgnoredFields(subject string, data []byte) []string {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return nil
	}
	known := JobFields()
	if subject == SubjectClosed {
		known = ClosedFields()
	}
	var out []string
	for name, v := range top {
		if !slices.ContainsFunc(known, func(k string) bool { return strings.EqualFold(k, name) }) {
			out = append(out, name)
			continue
		}
		if !strings.EqualFold(name, "salary") {
			continue
		}
		var sal map[string]json.RawMessage
		if json.Unmarshal(v, &sal) != nil {
			continue
		}
		for sub := range sal {
			if !slices.ContainsFunc(SalaryFields(), func(k string) bool { return strings.EqualFold(k, sub) }) {
				out = append(out, "salary."+sub)
			}
		}
	}
	slices.Sort(out)
	return out
}

// JobFields returns the JSON fields DecodeEvent reads from the body of a
// jobs.created or jobs.updated event, in declaration order.
func JobFields() []string { return jsonFields(reflect.TypeFor[wireJob]()) }

// SalaryFields returns the JSON fields DecodeEvent reads from salary.
func SalaryFields() []string { return jsonFields(reflect.TypeFor[wireSalary]()) }

// ClosedFields returns the JSON fields DecodeEvent reads from the body of
// a jobs.closed event.
func ClosedFields() []string { return jsonFields(reflect.TypeFor[wireClosed]()) }

func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}
