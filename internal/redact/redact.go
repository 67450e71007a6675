// Package redact is the one place that decides how a secret or a piece of
// personal data is shown where it must not appear in full: logs, error
// messages, `jobalert config`, readiness answers. Every function is pure
// and safe on any input (an unparseable value is masked whole, never shown).
//
//   - Email("jane@example.com") = "j***@example.com"
//   - Host("https://hooks.example.com/t/abc?key=x") = "https://hooks.example.com"
//   - URL("redis://user:pw@redis:6379/0?token=x") = "redis://user:****@redis:6379/0?token=****"
//   - URLs("nats://a:pw@n1:4222,nats://tok@n2:4222") masks each URL of a list
//   - Secret("hunter2") = "******** (set)", Secret("") = ""
//   - Token(tok) = "tok:" + 8 hex characters of its SHA-256 (to correlate log lines)
//   - Text(s) replaces every email address in s by Email's form and every URL
//     by Host's: for error text from elsewhere (SMTP replies, HTTP clients)
//   - Address is an email address that logs (slog) and prints as Email's form.
package redact

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret value.
const Mask = "****"

// Email returns an address as logs may show it: the first character of the
// local part and the domain, "j***@example.com". Anything that is not
// local@domain becomes "***".
func Email(addr string) string {
	addr = strings.TrimSpace(addr)
	i := strings.LastIndexByte(addr, '@')
	if i <= 0 || i == len(addr)-1 {
		return "***"
	}
	local, domain := addr[:i], addr[i+1:]
	r := []rune(local)
	return string(r[0]) + "***@" + domain
}

// Address is an email address that logs and prints as Email(address).
type Address string

// LogValue implements slog.LogValuer.
func (a Address) LogValue() slog.Value { return slog.StringValue(Email(string(a))) }

// String implements fmt.Stringer.
func (a Address) String() string { return Email(string(a)) }

// Host returns a URL's scheme and host (with its port), the only part of a
// webhook or other user-supplied URL that logs show: the path, query and
// user info may hold a token. A value that does not parse as an absolute
// URL becomes "(invalid URL)".
func Host(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return "(invalid URL)"
	}
	if u.Scheme == "" {
		return u.Host
	}
	return u.Scheme + "://" + u.Host
}

// URL returns a URL of the service's own configuration with its
// credentials masked and the rest kept: a password becomes "****", a user
// without a password (a NATS token, nats://TOKEN@host) becomes "****",
// and every query value becomes "****" (keys stay). A value that does not
// parse becomes "****" whole.
func URL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return Mask
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		} else if u.User.Username() != "" {
			u.User = url.User(Mask)
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k, vs := range q {
			for i := range vs {
				vs[i] = Mask
			}
			q[k] = vs
		}
		u.RawQuery = q.Encode()
	}
	if u.Fragment != "" {
		u.Fragment = Mask
	}
	// Encode leaves "*" alone; the mask stays readable.
	return strings.ReplaceAll(u.String(), "%2A", "*")
}

// URLs masks each URL of a comma-separated list, as URL does.
func URLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = URL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// Secret returns what may be shown of a secret: whether it is set.
func Secret(v string) string {
	if v == "" {
		return ""
	}
	return "******** (set)"
}

// Token returns a short fingerprint of a token or other high-entropy
// secret ("tok:" and 8 hex characters of its SHA-256), so log lines about
// one token can be correlated without showing it. Not for passwords: a
// fingerprint of a guessable value can be checked against guesses.
func Token(tok string) string {
	if tok == "" {
		return ""
	}
	h := sha256.Sum256([]byte(tok))
	return "tok:" + hex.EncodeToString(h[:4])
}

var (
	emailRE = regexp.MustCompile(`[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+`)
	urlRE   = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)
)

// Text redacts free text from elsewhere, such as an SMTP server's reply
// or an HTTP client's error: every URL becomes its scheme and host (Host)
// and every email address its Email form.
func Text(s string) string {
	s = urlRE.ReplaceAllStringFunc(s, func(u string) string {
		// A URL quoted by strconv.Quote or %q ends before the quote; a
		// trailing punctuation mark is not part of it.
		trail := ""
		for len(u) > 0 && strings.ContainsRune(".,;:)]", rune(u[len(u)-1])) {
			trail = u[len(u)-1:] + trail
			u = u[:len(u)-1]
		}
		return Host(u) + trail
	})
	return emailRE.ReplaceAllStringFunc(s, func(a string) string {
		// An address already redacted ("j***@example.com") stays as it is.
		if strings.HasSuffix(strings.SplitN(a, "@", 2)[0], "***") {
			return a
		}
		return Email(a)
	})
}

// Error returns err's text redacted by Text; nil is "".
func Error(err error) string {
	if err == nil {
		return ""
	}
	return Text(err.Error())
}

// Wrap returns an error whose text is Text of err's and which unwraps to
// err, so errors.Is and errors.As still see through it; nil stays nil.
func Wrap(err error) error {
	if err == nil {
		return nil
	}
	return &redacted{err}
}

type redacted struct{ err error }

func (e *redacted) Error() string { return Text(e.err.Error()) }
func (e *redacted) Unwrap() error { return e.err }
