// Package token issues and checks the signed, scoped tokens that stand in
// for a login in email links: confirm a subscription, unsubscribe with one
// click, manage a subscription. A token is
// base64url(scope "." subscription id "." expiry unix ["." version]) "." base64url(HMAC-SHA256),
// signed with JOBALERT_SECRET. A version, when present, is compared by the
// caller with the subscription's token version, so bumping that version
// revokes every token issued before (docs/security.md).
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Scope limits what a token may do.
type Scope string

// The scopes.
const (
	Confirm     Scope = "confirm"
	Unsubscribe Scope = "unsubscribe"
	Manage      Scope = "manage"
	// DeleteAll and RotateWebhook are the short-lived links emailed to
	// confirm "delete all my data" and a webhook secret rotation.
	DeleteAll     Scope = "delete-all"
	RotateWebhook Scope = "rotate-webhook"
)

// Claims are what a verified token says.
type Claims struct {
	Subject string
	Version int
	Expires time.Time // zero: never expires
}

// Errors from Verify. Each is a user error: callers answer 400 or a page.
var (
	ErrMalformed  = errors.New("the link is incomplete or damaged")
	ErrSignature  = errors.New("the link is not valid (it was changed or not issued by us)")
	ErrExpired    = errors.New("the link has expired")
	ErrWrongScope = errors.New("the link is not meant for this page")
)

// Signer issues and verifies tokens with one secret.
type Signer struct {
	secret []byte
}

// NewSigner returns a Signer; the secret must be at least 16 bytes.
func NewSigner(secret string) (*Signer, error) {
	if len(secret) < 16 {
		return nil, fmt.Errorf("token secret must be at least 16 bytes, got %d", len(secret))
	}
	return &Signer{secret: []byte(secret)}, nil
}

var b64 = base64.RawURLEncoding

// Issue returns a token for scope and subscription id; a zero expires means
// it never expires.
func (s *Signer) Issue(scope Scope, subID string, expires time.Time) string {
	var exp int64
	if !expires.IsZero() {
		exp = expires.Unix()
	}
	return s.sign(string(scope) + "." + subID + "." + strconv.FormatInt(exp, 10))
}

// IssueVersion returns a token like Issue's that also carries version.
func (s *Signer) IssueVersion(scope Scope, subID string, version int, expires time.Time) string {
	var exp int64
	if !expires.IsZero() {
		exp = expires.Unix()
	}
	return s.sign(string(scope) + "." + subID + "." + strconv.FormatInt(exp, 10) + "." + strconv.Itoa(version))
}

func (s *Signer) sign(payload string) string {
	return b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(s.mac(payload))
}

func (s *Signer) mac(payload string) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(payload))
	return m.Sum(nil)[:20]
}

// Verify checks tok and returns the subscription id it names. It fails with
// ErrMalformed, ErrSignature, ErrExpired or ErrWrongScope.
func (s *Signer) Verify(tok string, scope Scope, now time.Time) (string, error) {
	c, err := s.VerifyClaims(tok, scope, now)
	return c.Subject, err
}

// VerifyClaims checks tok like Verify and returns all it says; a token
// without a version has version 0.
func (s *Signer) VerifyClaims(tok string, scope Scope, now time.Time) (Claims, error) {
	subject, version, exp, err := s.verify(tok, scope, now)
	if err != nil {
		return Claims{}, err
	}
	c := Claims{Subject: subject, Version: version}
	if exp != 0 {
		c.Expires = time.Unix(exp, 0).UTC()
	}
	return c, nil
}

func (s *Signer) verify(tok string, scope Scope, now time.Time) (subject string, version int, exp int64, err error) {
	if len(tok) > 512 {
		return "", 0, 0, ErrMalformed
	}
	p64, m64, ok := strings.Cut(tok, ".")
	if !ok {
		return "", 0, 0, ErrMalformed
	}
	payload, err := b64.DecodeString(p64)
	if err != nil {
		return "", 0, 0, ErrMalformed
	}
	mac, err := b64.DecodeString(m64)
	if err != nil {
		return "", 0, 0, ErrMalformed
	}
	if !hmac.Equal(mac, s.mac(string(payload))) {
		return "", 0, 0, ErrSignature
	}
	parts := strings.Split(string(payload), ".")
	if len(parts) != 3 && len(parts) != 4 {
		return "", 0, 0, ErrMalformed
	}
	if exp, err = strconv.ParseInt(parts[2], 10, 64); err != nil {
		return "", 0, 0, ErrMalformed
	}
	if len(parts) == 4 {
		if version, err = strconv.Atoi(parts[3]); err != nil || version < 0 {
			return "", 0, 0, ErrMalformed
		}
	}
	if Scope(parts[0]) != scope {
		return "", 0, 0, ErrWrongScope
	}
	if exp != 0 && now.Unix() > exp {
		return "", 0, 0, ErrExpired
	}
	return parts[1], version, exp, nil
}

// DeriveKey returns a key for another use of the same secret (purpose
// names the use), so that one secret never serves two purposes directly.
func DeriveKey(secret, purpose string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("jobalert-derive\x00" + purpose))
	return m.Sum(nil)
}
