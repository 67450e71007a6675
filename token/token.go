// Package token issues and checks the signed, scoped tokens that stand in
// for a login in email links: confirm a subscription, unsubscribe with one
// click, manage a subscription. A token is
//
//	key id "." base64url(scope "." subscription id "." expiry unix ["." version]) "." base64url(HMAC-SHA256)
//
// signed with JOBALERT_SECRET. The key id (KeyID: 8 hex characters derived
// from the secret, which tells nothing about it) names the secret that
// signed the token, so that after a rotation Verify checks a token with
// the secret that made it: the current one or JOBALERT_SECRET_PREVIOUS.
// New tokens are always signed with the current secret. Tokens issued
// before key ids existed (no key id, one dot) are checked against every
// secret. A version, when present, is compared by the caller with the
// subscription's token version, so bumping that version revokes every
// token issued before (docs/security.md).
package token

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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

// StopChannel is the scope of the links in a chat message (Slack,
// Discord, Telegram): they open a page about the alert that shows no
// address and can only stop the alert posting to that one channel, since
// whoever reads a shared channel can follow them. ch is a channel name
// (store.ChannelSlack, ...), which holds no dot.
func StopChannel(ch string) Scope { return Scope("stop-" + ch) }

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

// Signer issues tokens with the current secret and verifies them with the
// current or a previous one.
type Signer struct {
	keys []key // the current secret first
}

type key struct {
	id     string
	secret []byte
}

// NewSigner returns a Signer that signs with secret and also accepts the
// tokens signed with each of previous (the secrets before a rotation).
// Every secret must be at least 16 bytes, and no two the same.
func NewSigner(secret string, previous ...string) (*Signer, error) {
	s := &Signer{}
	for i, sec := range append([]string{secret}, previous...) {
		if len(sec) < 16 {
			if i == 0 {
				return nil, fmt.Errorf("token secret must be at least 16 bytes, got %d", len(sec))
			}
			return nil, fmt.Errorf("previous token secret must be at least 16 bytes, got %d", len(sec))
		}
		for _, k := range s.keys {
			if string(k.secret) == sec {
				return nil, errors.New("a previous token secret is the same as a newer one")
			}
		}
		s.keys = append(s.keys, key{id: KeyID(sec), secret: []byte(sec)})
	}
	return s, nil
}

// KeyID is the key id of tokens signed with secret: the first 4 bytes, in
// hex, of a key derived from it (DeriveKey, purpose "key-id").
func KeyID(secret string) string {
	return hex.EncodeToString(DeriveKey(secret, "key-id")[:4])
}

// KeyID returns the key id of the tokens the Signer issues.
func (s *Signer) KeyID() string { return s.keys[0].id }

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

// sign returns the token of payload, signed with the current secret. The
// MAC covers the key id and the payload.
func (s *Signer) sign(payload string) string {
	k := s.keys[0]
	return k.id + "." + b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(mac(k.secret, k.id+"."+payload))
}

func mac(secret []byte, signed string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signed))
	return m.Sum(nil)[:20]
}

// checkMAC reports whether got is the MAC of payload under the key that
// kid names; without a key id (a token from before key ids), under any.
func (s *Signer) checkMAC(kid string, payload []byte, got []byte) bool {
	ok := false
	for _, k := range s.keys {
		switch {
		case kid == "":
			ok = hmac.Equal(got, mac(k.secret, string(payload))) || ok
		case k.id == kid:
			ok = hmac.Equal(got, mac(k.secret, kid+"."+string(payload))) || ok
		}
	}
	return ok
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
	var kid, p64, m64 string
	switch f := strings.Split(tok, "."); len(f) {
	case 2: // issued before key ids
		p64, m64 = f[0], f[1]
	case 3:
		kid, p64, m64 = f[0], f[1], f[2]
		if kid == "" {
			return "", 0, 0, ErrMalformed
		}
	default:
		return "", 0, 0, ErrMalformed
	}
	payload, err := b64.DecodeString(p64)
	if err != nil {
		return "", 0, 0, ErrMalformed
	}
	sum, err := b64.DecodeString(m64)
	if err != nil {
		return "", 0, 0, ErrMalformed
	}
	if !s.checkMAC(kid, payload, sum) {
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
