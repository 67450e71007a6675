package token_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/token"
)

func TestVerify(t *testing.T) {
	s, err := token.NewSigner("0123456789abcdef-secret")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	good := s.Issue(token.Confirm, "sub_abc", now.Add(time.Hour))
	other, _ := token.NewSigner("another-secret-of-16+")
	tampered := []byte(good)
	tampered[3] ^= 1
	cases := []struct {
		name  string
		tok   string
		scope token.Scope
		at    time.Time
		want  error
	}{
		{"valid", good, token.Confirm, now, nil},
		{"expired", good, token.Confirm, now.Add(2 * time.Hour), token.ErrExpired},
		{"wrong scope", good, token.Unsubscribe, now, token.ErrWrongScope},
		{"tampered", string(tampered), token.Confirm, now, token.ErrSignature},
		{"other secret", other.Issue(token.Confirm, "sub_abc", time.Time{}), token.Confirm, now, token.ErrSignature},
		{"no dot", "abc", token.Confirm, now, token.ErrMalformed},
		{"bad base64", "!!.??", token.Confirm, now, token.ErrMalformed},
		{"too long", strings.Repeat("a", 600), token.Confirm, now, token.ErrMalformed},
		{"empty", "", token.Confirm, now, token.ErrMalformed},
		{"never expires", s.Issue(token.Manage, "sub_abc", time.Time{}), token.Manage, now.Add(10 * 365 * 24 * time.Hour), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := s.Verify(c.tok, c.scope, c.at)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.want == nil && id != "sub_abc" {
				t.Fatalf("id: got %q, want sub_abc", id)
			}
		})
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := token.NewSigner("short"); err == nil {
		t.Fatal("got nil error, want a refusal of a 5-byte secret")
	}
}

func FuzzVerify(f *testing.F) {
	s, _ := token.NewSigner("0123456789abcdef-secret")
	f.Add(s.Issue(token.Confirm, "sub_x", time.Time{}))
	f.Add("a.b")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		_, _ = s.Verify(tok, token.Confirm, time.Now()) // must not panic
	})
}
