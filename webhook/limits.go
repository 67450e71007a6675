package webhook

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// hostHash names an endpoint's destination host in the per-host
// concurrency keys: the hex of the first 12 bytes of SHA-256 of
// "<lower-case host name>:<port>", the port being 443 or 80 when the URL
// gives none. URLs differing only in path, query or letter case of the
// host share it.
func hostHash(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	port := u.Port()
	if port == "" {
		port = "443"
		if strings.EqualFold(u.Scheme, "http") {
			port = "80"
		}
	}
	h := sha256.Sum256([]byte(net.JoinHostPort(host, port)))
	return hex.EncodeToString(h[:12]), nil
}

// deferDelay is the least time a delivery not admitted because its URL,
// host or subscription is at its concurrency limit waits before it is
// looked at again; it waits up to twice that (jitter). 1s at the default
// 15s timeout.
func (s *Service) deferDelay() time.Duration {
	return max(s.cfg.Timeout/15, 10*time.Millisecond)
}
