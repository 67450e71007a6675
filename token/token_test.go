package token_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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

// After a rotation (the old secret now previous), links signed with the old
// secret keep working, new ones are signed with the new secret only, and
// once the old secret is removed its links stop working.
func TestRotation(t *testing.T) {
	const oldSecret, newSecret = "the-old-secret-0123456789", "the-new-secret-9876543210"
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	before, _ := token.NewSigner(oldSecret)
	rotated, err := token.NewSigner(newSecret, oldSecret)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := token.NewSigner(newSecret)

	oldTok := before.IssueVersion(token.Manage, "sub_old", 3, now.Add(time.Hour))
	newTok := rotated.IssueVersion(token.Manage, "sub_new", 1, now.Add(time.Hour))
	if kid := strings.Split(newTok, ".")[0]; kid != token.KeyID(newSecret) || kid != rotated.KeyID() || kid == token.KeyID(oldSecret) {
		t.Errorf("key id of a new token: got %q, want the new secret's %q", kid, token.KeyID(newSecret))
	}
	// A token from before key ids: payload "." MAC over the payload.
	legacy := legacyToken(oldSecret, "unsubscribe.sub_legacy.0")

	cases := []struct {
		name   string
		s      *token.Signer
		tok    string
		scope  token.Scope
		want   error
		wantID string
	}{
		{"old link, rotated signer", rotated, oldTok, token.Manage, nil, "sub_old"},
		{"new link, rotated signer", rotated, newTok, token.Manage, nil, "sub_new"},
		{"new link, old signer", before, newTok, token.Manage, token.ErrSignature, ""},
		{"old link, previous secret removed", after, oldTok, token.Manage, token.ErrSignature, ""},
		{"legacy link, rotated signer", rotated, legacy, token.Unsubscribe, nil, "sub_legacy"},
		{"legacy link, previous secret removed", after, legacy, token.Unsubscribe, token.ErrSignature, ""},
		{"old link with the new key id", rotated, token.KeyID(newSecret) + oldTok[strings.Index(oldTok, "."):], token.Manage, token.ErrSignature, ""},
		{"unknown key id", rotated, "deadbeef" + oldTok[strings.Index(oldTok, "."):], token.Manage, token.ErrSignature, ""},
		{"empty key id", rotated, oldTok[strings.Index(oldTok, "."):], token.Manage, token.ErrMalformed, ""},
		{"four parts", rotated, oldTok + ".x", token.Manage, token.ErrMalformed, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := c.s.VerifyClaims(c.tok, c.scope, now)
			if !errors.Is(err, c.want) || claims.Subject != c.wantID {
				t.Fatalf("got %q %v, want %q %v", claims.Subject, err, c.wantID, c.want)
			}
		})
	}
	if c, _ := rotated.VerifyClaims(oldTok, token.Manage, now); c.Version != 3 {
		t.Errorf("version of an old link: got %d, want 3", c.Version)
	}
	for _, prev := range []string{"short", newSecret} {
		if _, err := token.NewSigner(newSecret, prev); err == nil {
			t.Errorf("previous secret %q: got nil error, want a refusal", prev)
		}
	}
}

func legacyToken(secret, payload string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:20])
}
