package redact_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/jobalert/jobalert/internal/redact"
)

func TestEmail(t *testing.T) {
	for in, want := range map[string]string{
		"jane@example.com":   "j***@example.com",
		" Jane.Doe+x@a.b.c ": "J***@a.b.c",
		"élise@exemple.fr":   "é***@exemple.fr",
		"no-at-sign":         "***",
		"@example.com":       "***",
		"jane@":              "***",
		"":                   "***",
		`"a@b"@example.com`:  `"***@example.com`,
		"x@y@example.com":    "x***@example.com",
	} {
		if got := redact.Email(in); got != want {
			t.Errorf("Email(%q): got %q, want %q", in, got, want)
		}
	}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("m", "email", redact.Address("jane@example.com"))
	if s := b.String(); !strings.Contains(s, "email=j***@example.com") || strings.Contains(s, "jane@") {
		t.Errorf("slog line: got %q, want email=j***@example.com", s)
	}
	if got := fmt.Sprint(redact.Address("jane@example.com")); got != "j***@example.com" {
		t.Errorf("fmt: got %q, want j***@example.com", got)
	}
}

func TestHost(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example.com/t/abc?key=x#f": "https://hooks.example.com",
		"http://user:pw@127.0.0.1:8080/x":         "http://127.0.0.1:8080",
		"https://[::1]:443/p":                     "https://[::1]:443",
		"not a url":                               "(invalid URL)",
		"":                                        "(invalid URL)",
		"%zz":                                     "(invalid URL)",
	} {
		if got := redact.Host(in); got != want {
			t.Errorf("Host(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://user:pw@redis:6379/0":          "redis://user:****@redis:6379/0",
		"redis://:pw@redis:6379/0":              "redis://:****@redis:6379/0",
		"nats://s3cr3t-token@nats:4222":         "nats://****@nats:4222",
		"rediss://redis:6380/0?password=x&db=1": "rediss://redis:6380/0?db=****&password=****",
		"https://alerts.example.com":            "https://alerts.example.com",
		"http://localhost:8080/#secret":         "http://localhost:8080/#****",
		"":                                      "",
		"redis://us er:p w@%zz":                 "****",
	} {
		if got := redact.URL(in); got != want {
			t.Errorf("URL(%q): got %q, want %q", in, got, want)
		}
	}
	if got, want := redact.URLs("nats://a:pw1@n1:4222, nats://tok@n2:4222"), "nats://a:****@n1:4222,nats://****@n2:4222"; got != want {
		t.Errorf("URLs: got %q, want %q", got, want)
	}
}

func TestSecretAndToken(t *testing.T) {
	if got := redact.Secret("hunter2"); got != "******** (set)" {
		t.Errorf("Secret: got %q, want ******** (set)", got)
	}
	if got := redact.Secret(""); got != "" {
		t.Errorf("Secret(empty): got %q, want empty", got)
	}
	a, b := redact.Token("tok-one-abcdef"), redact.Token("tok-two-abcdef")
	if !strings.HasPrefix(a, "tok:") || len(a) != 12 || a == b || strings.Contains(a, "abcdef") || a != redact.Token("tok-one-abcdef") {
		t.Errorf("Token: got %q and %q, want distinct stable tok:xxxxxxxx fingerprints", a, b)
	}
}

func TestText(t *testing.T) {
	in := `smtp rcpt: 550 5.1.1 <ada.lovelace@example.com>: user unknown; ` +
		`Post "https://hooks.example.com/t/SECRET?k=SECRET2": dial tcp: refused; ` +
		`redirect to https://u:pw@other.example/x. (from j***@example.org)`
	got := redact.Text(in)
	for _, leak := range []string{"ada.lovelace", "SECRET", "/t/", "pw@", "/x"} {
		if strings.Contains(got, leak) {
			t.Errorf("Text: %q still holds %q", got, leak)
		}
	}
	for _, keep := range []string{"a***@example.com", `"https://hooks.example.com": dial tcp`, "https://other.example.", "j***@example.org", "550 5.1.1"} {
		if !strings.Contains(got, keep) {
			t.Errorf("Text: got %q, want it to hold %q", got, keep)
		}
	}
}

func TestWrapKeepsTheChain(t *testing.T) {
	inner := fmt.Errorf("rcpt <ada@example.com>: %w", io.ErrUnexpectedEOF)
	err := redact.Wrap(inner)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("errors.Is through Wrap: got false, want true")
	}
	if got, want := err.Error(), "rcpt <a***@example.com>: unexpected EOF"; got != want {
		t.Errorf("Wrap text: got %q, want %q", got, want)
	}
	if redact.Wrap(nil) != nil || redact.Error(nil) != "" {
		t.Errorf("nil: got non-nil, want nil and empty")
	}
}
