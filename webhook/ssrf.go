package webhook

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// MaxURLLength is the longest webhook URL ValidateURL accepts, in bytes.
const MaxURLLength = 2048

// ErrForbiddenAddress is what errors.Is finds in every refusal of the SSRF
// guard, at validation or at dial time. The error itself is a
// *ForbiddenAddressError naming the address and why it is refused.
var ErrForbiddenAddress = errors.New("forbidden address")

// ErrInvalidURL is wrapped by every error ValidateURL returns.
var ErrInvalidURL = errors.New("invalid webhook url")

// ForbiddenAddressError is a refusal to connect to (or accept as a target)
// an address that is not a public unicast address.
type ForbiddenAddressError struct {
	Addr   netip.Addr
	Reason string // e.g. "loopback", "IPv4-mapped form of 10.0.0.1 (private, RFC 1918)"
}

func (e *ForbiddenAddressError) Error() string {
	return fmt.Sprintf("refusing to connect to %s: %s address (private targets are not allowed)", e.Addr, e.Reason)
}

// Is makes errors.Is(err, ErrForbiddenAddress) true.
func (e *ForbiddenAddressError) Is(target error) bool { return target == ErrForbiddenAddress }

type rangeReason struct {
	prefix netip.Prefix
	reason string
}

// forbidden4 lists the IPv4 special-purpose ranges (IANA registry) that are
// not reachable public unicast destinations.
var forbidden4 = []rangeReason{
	{netip.MustParsePrefix("0.0.0.0/8"), `"this network"`},
	{netip.MustParsePrefix("10.0.0.0/8"), "private (RFC 1918)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (RFC 6598)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (incl. cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private (RFC 1918)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay anycast"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private (RFC 1918)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("255.255.255.255/32"), "broadcast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

var (
	ipv4Compatible = netip.MustParsePrefix("::/96")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
)

// forbidden6 lists IPv6 ranges refused by name; anything else outside
// 2000::/3 is refused too.
var forbidden6 = []rangeReason{
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/23"), "IETF protocol assignment (Teredo, benchmarking, ORCHID)"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("2002::/16"), "6to4"},
	{netip.MustParsePrefix("3fff::/20"), "documentation"},
	{netip.MustParsePrefix("5f00::/16"), "SRv6 SID"},
	{netip.MustParsePrefix("fc00::/7"), "unique-local"},
	{netip.MustParsePrefix("fe80::/10"), "link-local"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
	{netip.MustParsePrefix("ff00::/8"), "multicast"},
}

func reason4(a netip.Addr) string {
	for _, r := range forbidden4 {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	return ""
}

// CheckAddr returns nil when a is a public unicast address a webhook may be
// sent to, and a *ForbiddenAddressError otherwise. IPv4 addresses embedded
// in IPv6 (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96) are judged by
// their IPv4 address; the deprecated IPv4-compatible ::/96, local-use NAT64
// and 6to4 forms are refused outright.
func CheckAddr(a netip.Addr) error {
	if !a.IsValid() {
		return &ForbiddenAddressError{Addr: a, Reason: "invalid"}
	}
	a = a.WithZone("")
	if a.Is4() || a.Is4In6() {
		v4 := a.Unmap()
		r := reason4(v4)
		if r == "" {
			return nil
		}
		if a.Is4In6() {
			r = fmt.Sprintf("IPv4-mapped form of %s (%s)", v4, r)
		}
		return &ForbiddenAddressError{Addr: a, Reason: r}
	}
	switch {
	case a.IsUnspecified():
		return &ForbiddenAddressError{Addr: a, Reason: "unspecified"}
	case a.IsLoopback():
		return &ForbiddenAddressError{Addr: a, Reason: "loopback"}
	case ipv4Compatible.Contains(a):
		b := a.As16()
		v4 := netip.AddrFrom4([4]byte(b[12:]))
		r := "deprecated IPv4-compatible form of " + v4.String()
		if r4 := reason4(v4); r4 != "" {
			r += " (" + r4 + ")"
		}
		return &ForbiddenAddressError{Addr: a, Reason: r}
	case nat64.Contains(a):
		b := a.As16()
		v4 := netip.AddrFrom4([4]byte(b[12:]))
		if r4 := reason4(v4); r4 != "" {
			return &ForbiddenAddressError{Addr: a, Reason: fmt.Sprintf("NAT64 form of %s (%s)", v4, r4)}
		}
		return nil
	}
	for _, r := range forbidden6 {
		if r.prefix.Contains(a) {
			return &ForbiddenAddressError{Addr: a, Reason: r.reason}
		}
	}
	if !globalUnicast6.Contains(a) {
		return &ForbiddenAddressError{Addr: a, Reason: "non-global IPv6 (outside 2000::/3)"}
	}
	return nil
}

// Dialer returns a dialer for webhook connections. Unless allowPrivate is
// set, its Control function checks every address actually being connected
// to (after DNS resolution, so DNS rebinding cannot slip a private address
// past a validated hostname) and refuses anything CheckAddr refuses, with an
// error wrapping a *ForbiddenAddressError. resolver may be nil for the
// default resolver.
func Dialer(allowPrivate bool, resolver *net.Resolver) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Resolver: resolver}
	if !allowPrivate {
		d.Control = controlDial
	}
	return d
}

func controlDial(network, address string, _ syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return fmt.Errorf("refusing %s connection to %s: only TCP is allowed", network, address)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("refusing connection to unparseable address %q: %w", address, ErrForbiddenAddress)
	}
	return CheckAddr(ap.Addr())
}

// ValidateURL checks a webhook URL given by a subscriber: an absolute https
// URL with a host, no user-info, no fragment, at most MaxURLLength bytes.
// With allowPrivate, http is accepted too; without it, a host that is a
// literal non-public IP address or a localhost name is refused. Hostnames
// are not resolved here: the dialer checks what they resolve to at every
// connection. Errors wrap ErrInvalidURL (and ErrForbiddenAddress for a
// refused literal address) and say what is wrong.
func ValidateURL(raw string, allowPrivate bool) error {
	if raw == "" {
		return fmt.Errorf("%w: empty", ErrInvalidURL)
	}
	if len(raw) > MaxURLLength {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidURL, MaxURLLength)
	}
	if strings.ContainsAny(raw, " \t\r\n") {
		return fmt.Errorf("%w: contains whitespace", ErrInvalidURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	switch scheme := strings.ToLower(u.Scheme); {
	case scheme == "https":
	case scheme == "http" && allowPrivate:
	case scheme == "":
		return fmt.Errorf("%w: not an absolute URL (want https://host/path)", ErrInvalidURL)
	default:
		return fmt.Errorf("%w: scheme %q is not allowed (want https)", ErrInvalidURL, u.Scheme)
	}
	if u.Opaque != "" || u.Host == "" {
		return fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: must not contain user info (user:password@)", ErrInvalidURL)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%w: must not contain a fragment (#...)", ErrInvalidURL)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if p := u.Port(); p != "" {
		if n, err := parsePort(p); err != nil || n == 0 {
			return fmt.Errorf("%w: bad port %q", ErrInvalidURL, p)
		}
	}
	if allowPrivate {
		return nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := CheckAddr(a); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidURL, err)
		}
		return nil
	}
	lh := strings.TrimSuffix(strings.ToLower(host), ".")
	if lh == "localhost" || strings.HasSuffix(lh, ".localhost") {
		return fmt.Errorf("%w: host %q is loopback: %w", ErrInvalidURL, host, ErrForbiddenAddress)
	}
	if numericHost(lh) {
		// 2130706433, 0x7f.1, 127.1: numeric forms some resolvers read as IPv4.
		return fmt.Errorf("%w: host %q is not a valid IP address or hostname", ErrInvalidURL, host)
	}
	return nil
}

// numericHost reports whether every label of host is a decimal or 0x-hex
// number, a form some resolvers read as an IPv4 address.
func numericHost(host string) bool {
	for _, label := range strings.Split(host, ".") {
		digits := "0123456789"
		if l := strings.TrimPrefix(label, "0x"); l != label {
			label, digits = l, "0123456789abcdef"
		}
		if label == "" || strings.Trim(label, digits) != "" {
			return false
		}
	}
	return true
}

func parsePort(p string) (int, error) {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a number")
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return 0, fmt.Errorf("out of range")
		}
	}
	return n, nil
}
