package consumer_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/matcher"
)

// The producer contract (docs/events.md) is written down three times: the
// prose, the JSON Schema docs/events.schema.json and the examples in
// docs/examples. These tests keep the schema and the examples in step with
// the decoder, which is the authority.

const (
	schemaFile     = "../docs/events.schema.json"
	exampleCreated = "../docs/examples/job-created.json"
	exampleClosed  = "../docs/examples/job-closed.json"
	exampleJSONL   = "../docs/examples/jobs.jsonl"
)

// schemaDoc is the schema file as plain JSON, for reading its keywords.
type schemaDoc struct {
	Description string                `json:"description"`
	Required    []string              `json:"required"`
	Properties  map[string]propSchema `json:"properties"`
	Defs        map[string]defSchema  `json:"$defs"`
}

type defSchema struct {
	propSchema
	Required   []string              `json:"required"`
	Properties map[string]propSchema `json:"properties"`
}

type propSchema struct {
	Ref       string   `json:"$ref"`
	Type      string   `json:"type"`
	Enum      []string `json:"enum"`
	MaxItems  *int     `json:"maxItems"`
	MaxLength *int     `json:"maxLength"`
	Examples  []any    `json:"examples"`
	Items     *struct {
		Type     string   `json:"type"`
		Examples []string `json:"examples"`
	} `json:"items"`
}

func readSchema(t *testing.T) schemaDoc {
	t.Helper()
	b, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var d schemaDoc
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	return d
}

// resolve follows a property's local $ref into $defs.
func (d schemaDoc) resolve(t *testing.T, p propSchema) propSchema {
	t.Helper()
	if p.Ref == "" {
		return p
	}
	name, ok := strings.CutPrefix(p.Ref, "#/$defs/")
	def, found := d.Defs[name]
	if !ok || !found {
		t.Fatalf("schema: $ref %q does not name a $defs entry", p.Ref)
	}
	return def.propSchema
}

// validators compiles the schema (draft 2020-12, formats asserted) for
// job bodies and for closed bodies.
func validators(t *testing.T) (job, closed *jsonschema.Schema) {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	job, err := c.Compile(schemaFile)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	closed, err = c.Compile(schemaFile + "#/$defs/closed")
	if err != nil {
		t.Fatalf("compile %s#/$defs/closed: %v", schemaFile, err)
	}
	return job, closed
}

func schemaErr(t *testing.T, sch *jsonschema.Schema, body []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	return sch.Validate(inst)
}

func compact(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return buf.Bytes()
}

// with returns body (a JSON object) with field set to the JSON value v,
// or removed when v is "".
func with(t *testing.T, body []byte, field, v string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if v == "" {
		delete(m, field)
	} else {
		m[field] = json.RawMessage(v)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatalf("%s = %s: %v", field, v, err)
	}
	return out
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// The examples are complete (every field of the schema), valid under the
// schema, and accepted by the decoder on every subject they are for, with
// nothing dropped or ignored.
func TestExamplesAreValid(t *testing.T) {
	jobSchema, closedSchema := validators(t)
	d := readSchema(t)
	created := compact(t, exampleCreated)

	var m map[string]json.RawMessage
	_ = json.Unmarshal(created, &m)
	if got, want := sorted(slices.Collect(maps.Keys(m))), sorted(slices.Collect(maps.Keys(d.Properties))); !slices.Equal(got, want) {
		t.Errorf("%s has fields %v, want every field of the schema %v", exampleCreated, got, want)
	}
	var sal map[string]json.RawMessage
	_ = json.Unmarshal(m["salary"], &sal)
	if got, want := sorted(slices.Collect(maps.Keys(sal))), sorted(slices.Collect(maps.Keys(d.Defs["salary"].Properties))); !slices.Equal(got, want) {
		t.Errorf("%s salary has fields %v, want %v", exampleCreated, got, want)
	}

	check := func(name, subject string, body []byte) {
		t.Helper()
		sch := jobSchema
		if subject == consumer.SubjectClosed {
			sch = closedSchema
		}
		if err := schemaErr(t, sch, body); err != nil {
			t.Errorf("%s: not valid under the schema: %v", name, err)
		}
		ev, err := consumer.DecodeEvent(subject, body)
		if err != nil {
			t.Errorf("%s on %s: got %v, want DecodeEvent to accept it", name, subject, err)
		}
		if len(ev.Dropped) > 0 {
			t.Errorf("%s: got dropped visa values %v, want none", name, ev.Dropped)
		}
		var findings []string
		if _, err := consumer.Check(bytes.NewReader(body), subject, func(f consumer.Finding) { findings = append(findings, f.String()) }); err != nil || len(findings) > 0 {
			t.Errorf("%s: Check got %v %q, want no error or warning", name, err, findings)
		}
	}
	check(exampleCreated, consumer.SubjectCreated, created)
	check(exampleCreated, consumer.SubjectUpdated, created)
	check(exampleClosed, consumer.SubjectClosed, compact(t, exampleClosed))

	f, err := os.Open(exampleJSONL)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		check(exampleJSONL+":"+strconv.Itoa(n), consumer.SubjectCreated, sc.Bytes())
	}
	if n == 0 {
		t.Errorf("%s: no event", exampleJSONL)
	}

	ev, _ := consumer.DecodeEvent(consumer.SubjectCreated, created)
	if ev.Job.Salary == nil || len(ev.Job.VisaTypes) == 0 || ev.Job.PostedAt.IsZero() || ev.Job.Description == "" {
		t.Errorf("%s decodes to %+v, want every field set", exampleCreated, ev.Job)
	}
}

// Every field of the schema is a field the decoder reads and the other way
// round; the required ones are exactly those the decoder requires; the
// types, limits, enums and listed values are the decoder's and the
// matcher's.
func TestSchemaMatchesDecoder(t *testing.T) {
	d := readSchema(t)
	jobSchema, _ := validators(t)
	created := compact(t, exampleCreated)
	closed := compact(t, exampleClosed)

	fields := func(p map[string]propSchema) []string { return sorted(slices.Collect(maps.Keys(p))) }
	if got, want := fields(d.Properties), sorted(consumer.JobFields()); !slices.Equal(got, want) {
		t.Errorf("schema properties: got %v, want the decoder's fields %v", got, want)
	}
	if got, want := fields(d.Defs["salary"].Properties), sorted(consumer.SalaryFields()); !slices.Equal(got, want) {
		t.Errorf("schema salary properties: got %v, want the decoder's fields %v", got, want)
	}
	if got, want := fields(d.Defs["closed"].Properties), sorted(consumer.ClosedFields()); !slices.Equal(got, want) {
		t.Errorf("schema closed properties: got %v, want the decoder's fields %v", got, want)
	}

	// Required: a field whose absence the decoder refuses as "required".
	required := func(subject string, body []byte, fields []string) []string {
		var out []string
		for _, f := range fields {
			_, err := consumer.DecodeEvent(subject, with(t, body, f, ""))
			var fe *consumer.FieldError
			if errors.As(err, &fe) && fe.Field == f && fe.Reason == "required" {
				out = append(out, f)
			} else if err != nil {
				t.Errorf("%s without %s: got %v, want accepted or a required error", subject, f, err)
			}
		}
		return sorted(out)
	}
	if got, want := sorted(d.Required), required(consumer.SubjectCreated, created, consumer.JobFields()); !slices.Equal(got, want) {
		t.Errorf("schema required: got %v, want the decoder's %v", got, want)
	}
	if got, want := sorted(d.Defs["closed"].Required), required(consumer.SubjectClosed, closed, consumer.ClosedFields()); !slices.Equal(got, want) {
		t.Errorf("schema closed required: got %v, want the decoder's %v", got, want)
	}

	// Types: a value of another JSON type is refused by both, and the
	// decoder names the field.
	wrong := map[string]string{"string": `5`, "array": `"x"`, "object": `"x"`, "number": `"x"`}
	for name, p := range d.Properties {
		p = d.resolve(t, p)
		bad, ok := wrong[p.Type]
		if !ok {
			t.Errorf("schema %s: type %q, want one of string, array, object, number", name, p.Type)
			continue
		}
		agree(t, name+" = "+bad, jobSchema, consumer.SubjectCreated, with(t, created, name, bad), name)
		if p.Items != nil {
			agree(t, name+" = [5]", jobSchema, consumer.SubjectCreated, with(t, created, name, `[5]`), name)
		}
	}
	for name, p := range d.Defs["salary"].Properties {
		bad := wrong[p.Type]
		agree(t, "salary."+name+" = "+bad, jobSchema, consumer.SubjectCreated, with(t, created, "salary", `{"`+name+`":`+bad+`}`), "salary."+name)
	}

	// Limits: maxItems and maxLength are where the decoder starts refusing.
	for name, p := range d.Properties {
		p = d.resolve(t, p)
		if p.Type == "array" {
			if p.MaxItems == nil {
				t.Errorf("schema %s: no maxItems", name)
				continue
			}
			list := func(n int) string {
				items := make([]string, n)
				for i := range items {
					items[i] = strconv.Quote("v" + strconv.Itoa(i))
				}
				return "[" + strings.Join(items, ",") + "]"
			}
			agree(t, fmt.Sprintf("%s with %d entries", name, *p.MaxItems), jobSchema, consumer.SubjectCreated, with(t, created, name, list(*p.MaxItems)), "")
			agree(t, fmt.Sprintf("%s with %d entries", name, *p.MaxItems+1), jobSchema, consumer.SubjectCreated, with(t, created, name, list(*p.MaxItems+1)), name)
		}
		if p.MaxLength != nil {
			long := func(n int) string {
				if name == "url" {
					return strconv.Quote("https://example.com/" + strings.Repeat("x", n-len("https://example.com/")))
				}
				return strconv.Quote(strings.Repeat("x", n))
			}
			agree(t, fmt.Sprintf("%s of %d bytes", name, *p.MaxLength), jobSchema, consumer.SubjectCreated, with(t, created, name, long(*p.MaxLength)), "")
			agree(t, fmt.Sprintf("%s of %d bytes", name, *p.MaxLength+1), jobSchema, consumer.SubjectCreated, with(t, created, name, long(*p.MaxLength+1)), name)
		}
	}
	if id := d.resolve(t, d.Properties["id"]); id.MaxLength == nil || *id.MaxLength != consumer.MaxID {
		t.Errorf("schema id maxLength: got %v, want consumer.MaxID %d", id.MaxLength, consumer.MaxID)
	}
	if u := d.Properties["url"]; u.MaxLength == nil || *u.MaxLength != consumer.MaxURL {
		t.Errorf("schema url maxLength: got %v, want consumer.MaxURL %d", u.MaxLength, consumer.MaxURL)
	}
	if !strings.Contains(d.Description, "at most "+strconv.Itoa(consumer.MaxBody)+" bytes") {
		t.Errorf("schema description: want the body limit %q", "at most "+strconv.Itoa(consumer.MaxBody)+" bytes")
	}

	// Enumerations and listed values are the matcher's.
	if got := d.Properties["workplace"].Enum; !slices.Equal(got, matcher.Workplaces) {
		t.Errorf("schema workplace enum: got %v, want matcher.Workplaces %v", got, matcher.Workplaces)
	}
	if it := d.Properties["visa_types"].Items; it == nil || !slices.Equal(it.Examples, matcher.VisaCodes()) {
		t.Errorf("schema visa_types items examples: got %+v, want matcher.VisaCodes() %v", it, matcher.VisaCodes())
	}
	var sen []string
	for _, v := range d.Properties["seniority"].Examples {
		s, _ := v.(string)
		sen = append(sen, s)
	}
	if !slices.Equal(sen, matcher.SeniorityLevels()) {
		t.Errorf("schema seniority examples: got %v, want matcher.SeniorityLevels() %v", sen, matcher.SeniorityLevels())
	}
	for _, v := range d.Defs["salary"].Properties["period"].Examples {
		p, _ := v.(string)
		if _, ok := (&matcher.Salary{Max: 1, Period: p}).AnnualUSD(); !ok {
			t.Errorf("schema salary period example %q: not a period the matcher knows", p)
		}
	}
}

// agree checks that the schema and the decoder give the same verdict on
// body: both accept it (field "") or both refuse it, the decoder with an
// error naming field.
func agree(t *testing.T, label string, sch *jsonschema.Schema, subject string, body []byte, field string) {
	t.Helper()
	serr := schemaErr(t, sch, body)
	_, derr := consumer.DecodeEvent(subject, body)
	if field == "" {
		if serr != nil || derr != nil {
			t.Errorf("%s on %s: got schema %v, decoder %v; want both to accept it", label, subject, serr, derr)
		}
		return
	}
	var fe *consumer.FieldError
	if serr == nil || !errors.As(derr, &fe) || fe.Field != field {
		t.Errorf("%s on %s: got schema %v, decoder %v; want both to refuse it, the decoder naming %q", label, subject, serr, derr, field)
	}
}

// The schema and the decoder agree on the forms a field may take.
func TestSchemaAgreesWithDecoderOnForms(t *testing.T) {
	jobSchema, closedSchema := validators(t)
	created := compact(t, exampleCreated)
	for _, c := range []struct{ field, value, refused string }{
		{"id", `"  "`, "id"},
		{"id", `"a\u0001b"`, "id"},
		{"id", `"a\ufffdb"`, "id"},
		{"id", `"job 1"`, ""},
		{"title", `"  "`, "title"},
		{"title", `"\u00a0\u3000"`, "title"},
		{"title", `"\u0007"`, "title"},
		{"title", `"C++ Developer"`, ""},
		{"company", `""`, "company"},
		{"workplace", `"moon"`, "workplace"},
		{"workplace", `"remote"`, ""},
		{"url", `"ftp://example.com/x"`, "url"},
		{"url", `"/jobs/1"`, "url"},
		{"url", `"https://example.com/a b"`, "url"},
		{"url", `"https://"`, "url"},
		{"url", `"HTTPS://example.com/jobs?id=1#top"`, ""},
		{"posted_at", `"yesterday"`, "posted_at"},
		{"posted_at", `"2026-11-26"`, "posted_at"},
		{"posted_at", `"2026-11-26 10:00:00Z"`, "posted_at"},
		{"posted_at", `"2026-11-26T10:00:00"`, "posted_at"},
		{"posted_at", `"2026-13-26T10:00:00Z"`, "posted_at"},
		{"posted_at", `"2026-11-26T10:00:00.123456+05:30"`, ""},
		{"visa_types", `["h1b","Schengen"]`, ""},
		{"seniority", `"lead"`, ""},
		{"salary", `{"max":80,"period":"hourly","currency":"CAD"}`, ""},
		{"locations", `[]`, ""},
		{"description", `"line 1\n\tline 2"`, ""},
		{"source", `{"board":"example"}`, ""},
		{"visa_sponsorship", `"unknown"`, ""},
		{"visa_sponsorship", `"maybe"`, "visa_sponsorship"},
		{"canonical_id", `"a\u0001b"`, "canonical_id"},
		{"canonical_id", `"role-7"`, ""},
	} {
		agree(t, c.field+" = "+c.value, jobSchema, consumer.SubjectCreated, with(t, created, c.field, c.value), c.refused)
	}
	for _, c := range []struct{ body, refused string }{
		{`{"id":"j1"}`, ""},
		{`{"id":"j1","title":5}`, ""}, // ignored on jobs.closed
		{`{"id":""}`, "id"},
		{`{"title":"x"}`, "id"},
	} {
		agree(t, c.body, closedSchema, consumer.SubjectClosed, []byte(c.body), c.refused)
	}
	for _, body := range []string{`[]`, `"job"`, `null`} {
		if serr, derr := schemaErr(t, jobSchema, []byte(body)), func() error { _, err := consumer.DecodeEvent(consumer.SubjectCreated, []byte(body)); return err }(); serr == nil || derr == nil {
			t.Errorf("%s: got schema %v, decoder %v; want both to refuse it", body, serr, derr)
		}
	}
}
