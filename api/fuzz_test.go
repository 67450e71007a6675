package api_test

import (
	"net/http"
	"testing"

	"github.com/jobalert/jobalert/api"
)

// FuzzSignupBody posts random bodies to the sign-up API on the real stack:
// never a 5xx, and never an email for a refused body. `go test` runs the
// seeds; `go test ./api -run '^$' -fuzz FuzzSignupBody` explores.
func FuzzSignupBody(f *testing.F) {
	for _, seed := range []string{
		`{"email":"fuzz@example.com","filter":{"keywords":"backend"}}`,
		`{"email":"fuzz@example.com","filter":{"locations":["Seattle\r\nBcc: x@example.com"]}}`,
		`{"email":"fuzz@example.com","filter":{"keywords":"\u202egnp.exe"}}`,
		`{"email":"f\u0000@example.com","filter":{"tags":["go"]}}`,
		`{"email":"a@b.c","filter":{"visa_types":["H-1B","xx"],"min_salary":-1},"send_hour":99}`,
		`{"email":"fuzz@example.com","filter":{"companies":["` + "\xff\xfe" + `"]}}`,
		`{"email":"fuzz@example.com","filter":{},"webhook_url":"http://169.254.169.254/"}`,
		`[1,2,3]`, `null`, `{"filter":{"keywords":{"a":1}}}`, "{\"email\":\"\U0001F600@example.com\"}", ``,
	} {
		f.Add(seed)
	}
	e := newEnv(f, func(c *api.Config, _ *api.Deps) {
		c.ConfirmationsPerHour, c.ConfirmationsPerIPPerHour, c.ConfirmationsPerHourTotal = 1<<30, 1<<30, 1<<30
	})
	f.Fuzz(func(t *testing.T, body string) {
		e := *e
		e.t = t
		before := len(e.sink.Messages())
		r := e.do("POST", "/v1/subscriptions", body, "Content-Type", "application/json")
		if r.status >= 500 {
			t.Fatalf("got %d %s for %q, want no 5xx", r.status, r.body, body)
		}
		if r.status != http.StatusCreated {
			if after := len(e.sink.Messages()); after != before {
				t.Fatalf("got %d new emails for a refused body (%d) %q, want 0", after-before, r.status, body)
			}
		}
	})
}
