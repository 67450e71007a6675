package consumer_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jobalert/jobalert/consumer"
	"github.com/jobalert/jobalert/jobevent"
	"github.com/jobalert/jobalert/matcher"
)

const sbux = `{"id":"sbux-1042","title":"Backend Engineer II","company":"Starbucks",
 "locations":["Seattle, WA, US"],"workplace":"hybrid",
 "visa_types":["H-1B","TN","O-1A"],
 "salary":{"min":115000,"max":160000,"currency":"USD","period":"year"},
 "seniority":"mid","tags":["java","python","aws","nosql"],
 "url":"https://careers.example.com/sbux-1042","posted_at":"2026-11-26T10:00:00Z"}`

func TestDecodeEventExample(t *testing.T) {
	got, err := consumer.DecodeEvent("jobs.created", []byte(sbux))
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	want := jobevent.Event{
		Kind:    jobevent.Created,
		Subject: "jobs.created",
		Job: matcher.Job{
			ID: "sbux-1042", Title: "Backend Engineer II", Company: "Starbucks",
			Locations: []string{"Seattle, WA, US"}, Workplace: "hybrid",
			VisaTypes: []string{"H-1B", "TN", "O-1"},
			Salary:    &matcher.Salary{Min: 115000, Max: 160000, Currency: "USD", Period: "year"},
			Seniority: "mid", Tags: []string{"java", "python", "aws", "nosql"},
			URL:      "https://careers.example.com/sbux-1042",
			PostedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestDecodeEventNormalises(t *testing.T) {
	long := strings.Repeat("é", 3000) // 6000 bytes, 2-byte runes
	body, _ := json.Marshal(map[string]any{
		"id":          "  j-1 \t",
		"title":       " Senior\nBackend Engineer ",
		"company":     "Acme",
		"workplace":   "Remote",
		"visa_types":  []string{"h1b", "H-1B", "tn visa", "Schengen", "", "gc"},
		"locations":   []string{" Seattle, WA ", "", "  "},
		"tags":        []string{},
		"description": long,
		"posted_at":   "2026-11-26T12:00:00.5+02:00",
		"extra":       map[string]any{"ignored": true},
		"salary":      nil,
	})
	ev, err := consumer.DecodeEvent("jobs.updated", body)
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	j := ev.Job
	if ev.Kind != jobevent.Updated {
		t.Errorf("kind: got %v want updated", ev.Kind)
	}
	if j.ID != "j-1" || j.Title != "Senior Backend Engineer" || j.Workplace != "remote" {
		t.Errorf("got id %q title %q workplace %q", j.ID, j.Title, j.Workplace)
	}
	if want := []string{"H-1B", "TN", "GREEN-CARD"}; !reflect.DeepEqual(j.VisaTypes, want) {
		t.Errorf("visa_types: got %q want %q", j.VisaTypes, want)
	}
	if want := []string{"Schengen"}; !reflect.DeepEqual(ev.Dropped, want) {
		t.Errorf("dropped: got %q want %q", ev.Dropped, want)
	}
	if want := []string{"Seattle, WA"}; !reflect.DeepEqual(j.Locations, want) {
		t.Errorf("locations: got %q want %q", j.Locations, want)
	}
	if j.Tags != nil || j.Salary != nil {
		t.Errorf("tags %q salary %v: want nil", j.Tags, j.Salary)
	}
	if len(j.Description) > consumer.MaxDescription || len(j.Description) < consumer.MaxDescription-1 || !utf8.ValidString(j.Description) {
		t.Errorf("description: %d bytes, valid UTF-8 %v; want ≤ %d, on a rune boundary", len(j.Description), utf8.ValidString(j.Description), consumer.MaxDescription)
	}
	if want := time.Date(2026, 11, 26, 10, 0, 0, 5e8, time.UTC); !j.PostedAt.Equal(want) || j.PostedAt.Location() != time.UTC {
		t.Errorf("posted_at: got %v want %v", j.PostedAt, want)
	}
}

func TestDecodeEventClosedNeedsOnlyID(t *testing.T) {
	ev, err := consumer.DecodeEvent("jobs.closed", []byte(`{"id":"x-1","title":17,"salary":"n/a"}`))
	if err != nil {
		t.Fatalf("DecodeEvent: %v", err)
	}
	if want := (matcher.Job{ID: "x-1"}); ev.Kind != jobevent.Closed || !reflect.DeepEqual(ev.Job, want) {
		t.Errorf("got %+v", ev)
	}
}

func TestDecodeEventErrors(t *testing.T) {
	job := func(extra string) string {
		return `{"id":"j1","title":"Backend Engineer","company":"Acme"` + extra + `}`
	}
	tests := []struct {
		name, subject, body, want string
	}{
		{"unknown subject", "jobs.deleted", job(""), `subject "jobs.deleted": not an event subject (want jobs.created, jobs.updated or jobs.closed)`},
		{"nested subject", "jobs.created.v2", job(""), `subject "jobs.created.v2": not an event subject (want jobs.created, jobs.updated or jobs.closed)`},
		{"too large", "jobs.created", job(`,"description":"` + strings.Repeat("x", consumer.MaxBody) + `"`), `body: 65608 bytes, larger than the 64 KiB limit`},
		{"empty", "jobs.created", "  ", `body: empty, want a JSON object`},
		{"array", "jobs.created", `[{"id":"j1"}]`, `body: want a JSON object`},
		{"null", "jobs.created", `null`, `body: want a JSON object`},
		{"two objects", "jobs.created", job("") + job(""), `body: invalid JSON at offset 56: invalid character '{' after top-level value`},
		{"truncated", "jobs.created", `{"id":"j1"`, `body: invalid JSON at offset 10: unexpected end of JSON input`},
		{"missing id", "jobs.created", `{"title":"Backend Engineer","company":"Acme"}`, `field "id": required`},
		{"blank id", "jobs.created", `{"id":"  ","title":"Backend Engineer","company":"Acme"}`, `field "id": required`},
		{"missing title", "jobs.created", `{"id":"j1","company":"Acme"}`, `field "title": required`},
		{"null title", "jobs.updated", `{"id":"j1","title":null,"company":"Acme"}`, `field "title": required`},
		{"missing company", "jobs.created", `{"id":"j1","title":"Backend Engineer"}`, `field "company": required`},
		{"closed without id", "jobs.closed", `{}`, `field "id": required`},
		{"closed id number", "jobs.closed", `{"id":42}`, `field "id": want a string, got number`},
		{"id number", "jobs.created", `{"id":42,"title":"t","company":"c"}`, `field "id": want a string, got number`},
		{"id too long", "jobs.created", `{"id":"` + strings.Repeat("a", 201) + `","title":"t","company":"c"}`, `field "id": 201 bytes, longer than 200`},
		{"id control", "jobs.created", `{"id":"a\u0000b","title":"t","company":"c"}`, `field "id": contains a control character`},
		{"title number", "jobs.created", `{"id":"j1","title":7,"company":"c"}`, `field "title": want a string, got number`},
		{"company object", "jobs.created", `{"id":"j1","title":"t","company":{}}`, `field "company": want a string, got object`},
		{"locations string", "jobs.created", job(`,"locations":"Seattle"`), `field "locations": want an array of strings, got string`},
		{"locations numbers", "jobs.created", job(`,"locations":[1]`), `field "locations": want an array of strings, got number`},
		{"locations too many", "jobs.created", job(`,"locations":[` + strings.Repeat(`"x",`, 50) + `"x"]`), `field "locations": 51 entries, more than 50`},
		{"tags object", "jobs.created", job(`,"tags":{"a":1}`), `field "tags": want an array of strings, got object`},
		{"visa_types bool", "jobs.created", job(`,"visa_types":[true]`), `field "visa_types": want an array of strings, got bool`},
		{"workplace unknown", "jobs.created", job(`,"workplace":"office"`), `field "workplace": "office" is not one of onsite, hybrid, remote`},
		{"workplace number", "jobs.created", job(`,"workplace":1`), `field "workplace": want a string, got number`},
		{"salary array", "jobs.created", job(`,"salary":[1]`), `field "salary": want an object, got array`},
		{"salary min string", "jobs.created", job(`,"salary":{"min":"100k"}`), `field "salary.min": want a number, got string`},
		{"salary max huge", "jobs.created", job(`,"salary":{"max":1e999}`), `field "salary.max": number out of range`},
		{"salary currency number", "jobs.created", job(`,"salary":{"currency":840}`), `field "salary.currency": want a string, got number`},
		{"posted_at not RFC 3339", "jobs.created", job(`,"posted_at":"26/11/2026"`), `field "posted_at": want an RFC 3339 time such as 2026-11-26T10:00:00Z`},
		{"posted_at number", "jobs.created", job(`,"posted_at":1764151200`), `field "posted_at": want a string, got number`},
		{"posted_at year 0", "jobs.created", job(`,"posted_at":"0000-01-01T00:00:00+01:00"`), `field "posted_at": year out of range`},
		{"url scheme", "jobs.created", job(`,"url":"javascript:alert(1)"`), `field "url": want an absolute http or https URL`},
		{"url relative", "jobs.created", job(`,"url":"/jobs/1"`), `field "url": want an absolute http or https URL`},
		{"url spaces", "jobs.created", job(`,"url":"https://x.example/a b"`), `field "url": contains white space or a control character`},
		{"url too long", "jobs.created", job(`,"url":"https://x.example/` + strings.Repeat("a", 2048) + `"`), `field "url": 2066 bytes, longer than 2048`},
		{"seniority number", "jobs.created", job(`,"seniority":3`), `field "seniority": want a string, got number`},
		{"description array", "jobs.created", job(`,"description":["a"]`), `field "description": want a string, got array`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := consumer.DecodeEvent(tt.subject, []byte(tt.body))
			if err == nil {
				t.Fatalf("got no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %q\nwant %q", err.Error(), tt.want)
			}
			if !errors.Is(err, consumer.ErrPoison) {
				t.Errorf("error %v does not wrap ErrPoison", err)
			}
		})
	}
}

func TestDecodeEventFieldError(t *testing.T) {
	_, err := consumer.DecodeEvent("jobs.created", []byte(`{"id":"j1","company":"c"}`))
	var fe *consumer.FieldError
	if !errors.As(err, &fe) || fe.Field != "title" || fe.Reason != "required" {
		t.Fatalf("got %#v, want a FieldError for title", err)
	}
}

func TestDecodeJobLine(t *testing.T) {
	j, err := consumer.DecodeJobLine([]byte(sbux))
	if err != nil || j.ID != "sbux-1042" {
		t.Fatalf("got %+v, %v", j, err)
	}
	if _, err := consumer.DecodeJobLine([]byte(`{"id":"j1"}`)); err == nil || err.Error() != `field "title": required` {
		t.Errorf("got %v, want the title error", err)
	}
}

// FuzzDecodeEvent checks that DecodeEvent never panics and that what it
// accepts is stable: re-encoding the job and decoding it again gives the
// same event. The seeds in testdata/fuzz/FuzzDecodeEvent run in every
// `go test`; `make fuzz` explores further.
func FuzzDecodeEvent(f *testing.F) {
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		ev, err := consumer.DecodeEvent(subject, data)
		if err != nil {
			if !errors.Is(err, consumer.ErrPoison) {
				t.Fatalf("error %v does not wrap ErrPoison", err)
			}
			return
		}
		if ev.Job.ID == "" || (ev.Kind != jobevent.Closed && (ev.Job.Title == "" || ev.Job.Company == "")) {
			t.Fatalf("accepted an event without its required fields: %+v", ev)
		}
		if len(ev.Job.Description) > consumer.MaxDescription || len(ev.Job.ID) > consumer.MaxID {
			t.Fatalf("bounds not applied: %+v", ev)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(ev.Job); err != nil {
			t.Fatalf("re-encode %+v: %v", ev.Job, err)
		}
		again, err := consumer.DecodeEvent(subject, buf.Bytes())
		if err != nil {
			t.Fatalf("re-encoded event rejected: %v\n%s", err, buf.Bytes())
		}
		if again.Kind != ev.Kind || !reflect.DeepEqual(again.Job, ev.Job) {
			t.Fatalf("round trip changed the event:\nfirst  %+v\nsecond %+v", ev.Job, again.Job)
		}
		if len(again.Dropped) != 0 {
			t.Fatalf("round trip kept unknown visa values: %q", again.Dropped)
		}
	})
}
