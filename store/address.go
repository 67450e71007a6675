package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// dotlessDomains ignore dots in the local part: a.b@gmail.com and
// ab@gmail.com are one mailbox. googlemail.com is gmail.com.
var dotlessDomains = map[string]string{
	"gmail.com":      "gmail.com",
	"googlemail.com": "gmail.com",
}

// CanonicalEmail returns the mailbox an address delivers to, as far as a
// rate limit or a suppression needs to know: lower case, without a
// "+tag" in the local part, and without dots in the local part for
// domains known to ignore them (docs/security.md). It is a key, never an
// address to send to.
func CanonicalEmail(email string) string {
	e := strings.ToLower(strings.TrimSpace(email))
	local, domain, ok := strings.Cut(e, "@")
	if !ok {
		return e
	}
	if i := strings.IndexByte(local, '+'); i > 0 {
		local = local[:i]
	}
	if d, ok := dotlessDomains[domain]; ok {
		domain = d
		local = strings.ReplaceAll(local, ".", "")
	}
	return local + "@" + domain
}

// addressKey names a mailbox in the suppression list, the bounce counts
// and the per-address rate limit: a keyed HMAC of the canonical address,
// so a copy of Redis cannot be tested against a list of addresses
// without the key (Config.AddressKey).
func (s *Redis) addressKey(email string) string {
	return addressHash(s.cfg.AddressKey, email)
}

// previousAddressKeys names the mailbox under each previous address key
// (Config.PreviousAddressKeys), oldest last.
func (s *Redis) previousAddressKeys(email string) []string {
	out := make([]string, len(s.cfg.PreviousAddressKeys))
	for i, k := range s.cfg.PreviousAddressKeys {
		out[i] = addressHash(k, email)
	}
	return out
}

func addressHash(key []byte, email string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("jobalert-address\x00"))
	m.Write([]byte(CanonicalEmail(email)))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// AddressKey returns the keyed name of the mailbox email delivers to, as
// the per-address rate limit uses it.
func (s *Redis) AddressKey(email string) string { return s.addressKey(email) }
