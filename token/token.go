// Package token issues and checks the signed, scoped tokens that stand in
// for a login in email links: confirm a subscription, unsubscribe with one
// click, manage a subscription. A token is
// base64url(scope "." subscription id "." expiry unix) "." base64url(HMAC-SHA256),
// signed with JOBALERT_SECRET; nothing about it is stored.
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
)

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
	payload := string(scope) + "." + subID + "." + strconv.FormatInt(exp, 10)
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
	if len(tok) > 512 {
		return "", ErrMalformed
	}
	p64, m64, ok := strings.Cut(tok, ".")
	if !ok {
		return "", ErrMalformed
	}
	payload, err := b64.DecodeString(p64)
	if err != nil {
		return "", ErrMalformed
	}
	mac, err := b64.DecodeString(m64)
	if err != nil {
		return "", ErrMalformed
	}
	if !hmac.Equal(mac, s.mac(string(payload))) {
		return "", ErrSignature
	}
	parts := strings.Split(string(payload), ".")
	if len(parts) != 3 {
		return "", ErrMalformed
	}
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", ErrMalformed
	}
	if Scope(parts[0]) != scope {
		return "", ErrWrongScope
	}
	if exp != 0 && now.Unix() > exp {
		return "", ErrExpired
	}
	return parts[1], nil
}
