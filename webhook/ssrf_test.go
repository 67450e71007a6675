package webhook_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/webhook"
)

func TestCheckAddr(t *testing.T) {
	refused := []string{
		// IPv4
		"127.0.0.1", "127.255.255.254", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.255",
		"0.0.0.0", "0.1.2.3", "255.255.255.255", "224.0.0.1", "239.255.255.250",
		"240.0.0.1", "192.0.0.8", "192.0.2.1", "192.88.99.1", "198.18.0.1", "198.19.255.255",
		"198.51.100.7", "203.0.113.9",
		// IPv6
		"::", "::1", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "ff02::1", "ff0e::1",
		"fec0::1", "100::1", "2001:db8::1", "2001::1", "2001:2::1", "2002:7f00:1::1", "3fff::1",
		"5f00::1", "4000::1",
		// IPv4-mapped
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0",
		"::ffff:100.64.0.1", "::ffff:192.168.0.1",
		// IPv4-compatible (deprecated)
		"::127.0.0.1", "::10.0.0.1", "::8.8.8.8",
		// NAT64
		"64:ff9b::127.0.0.1", "64:ff9b::a9fe:a9fe", "64:ff9b::10.0.0.1", "64:ff9b::c0a8:1",
		"64:ff9b:1::a00:1", "64:ff9b:1::808:808",
	}
	allowed := []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.0",
		"172.15.255.255", "172.32.0.0", "169.253.255.255", "198.20.0.0",
		"2606:4700:4700::1111", "2a00:1450:4001::200e",
		"::ffff:8.8.8.8", "64:ff9b::8.8.8.8",
	}
	strict := webhook.Dialer(false, nil)
	lax := webhook.Dialer(true, nil)
	if strict.Control == nil {
		t.Fatal("Dialer(allowPrivate=false) has no Control")
	}
	if lax.Control != nil {
		t.Fatal("Dialer(allowPrivate=true) has a Control: want none")
	}
	for _, s := range refused {
		a := netip.MustParseAddr(s)
		err := webhook.CheckAddr(a)
		var fe *webhook.ForbiddenAddressError
		if !errors.Is(err, webhook.ErrForbiddenAddress) || !errors.As(err, &fe) {
			t.Errorf("CheckAddr(%s) = %v, want a ForbiddenAddressError", s, err)
			continue
		}
		if !strings.Contains(err.Error(), a.WithZone("").String()) {
			t.Errorf("CheckAddr(%s) error %q does not name the address", s, err)
		}
		if err := strict.Control("tcp", netip.AddrPortFrom(a, 443).String(), nil); !errors.Is(err, webhook.ErrForbiddenAddress) {
			t.Errorf("Control(%s) = %v, want ErrForbiddenAddress", s, err)
		}
	}
	for _, s := range allowed {
		a := netip.MustParseAddr(s)
		if err := webhook.CheckAddr(a); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want nil", s, err)
		}
		if err := strict.Control("tcp", netip.AddrPortFrom(a, 443).String(), nil); err != nil {
			t.Errorf("Control(%s) = %v, want nil", s, err)
		}
	}
	if err := strict.Control("udp", "8.8.8.8:53", nil); err == nil {
		t.Error("Control allowed UDP")
	}
}

func TestDialerRefusesLoopbackTarget(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	resolver := loopbackResolver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	for _, target := range []string{addr, "evil.example.test:" + port, "[::ffff:127.0.0.1]:" + port} {
		c, err := webhook.Dialer(false, resolver).DialContext(ctx, "tcp", target)
		if err == nil {
			c.Close()
			t.Errorf("dial %s without AllowPrivate: connected, want refusal", target)
		} else if !errors.Is(err, webhook.ErrForbiddenAddress) || !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("dial %s without AllowPrivate: err %v, want ErrForbiddenAddress naming 127.0.0.1", target, err)
		}
		c, err = webhook.Dialer(true, resolver).DialContext(ctx, "tcp", target)
		if err != nil {
			t.Errorf("dial %s with AllowPrivate: %v", target, err)
		} else {
			c.Close()
		}
	}
}

func TestValidateURL(t *testing.T) {
	long := "https://hooks.example.com/" + strings.Repeat("a", webhook.MaxURLLength)
	tests := []struct {
		url        string
		strictErr  string // "" = valid without AllowPrivate
		privateErr string // "" = valid with AllowPrivate
	}{
		{"https://hooks.example.com/jobs", "", ""},
		{"https://hooks.example.com:8443/a?b=c", "", ""},
		{"https://8.8.8.8/x", "", ""},
		{"https://[2606:4700::1]/x", "", ""},
		{"HTTPS://Hooks.Example.com/", "", ""},
		{"http://hooks.example.com/", "scheme \"http\"", ""},
		{"https://127.0.0.1/", "127.0.0.1", ""},
		{"https://10.0.0.1:8443/", "10.0.0.1", ""},
		{"https://169.254.169.254/latest/meta-data", "169.254.169.254", ""},
		{"https://[::1]/", "::1", ""},
		{"https://[::ffff:10.0.0.1]/", "::ffff:10.0.0.1", ""},
		{"https://[64:ff9b::7f00:1]/", "NAT64", ""},
		{"https://[fe80::1%25eth0]/", "link-local", ""},
		{"https://localhost/", "loopback", ""},
		{"https://api.localhost./", "loopback", ""},
		{"https://2130706433/", "not a valid IP", ""},
		{"https://0x7f.1/", "not a valid IP", ""},
		{"", "empty", "empty"},
		{"hooks.example.com/jobs", "not an absolute URL", "not an absolute URL"},
		{"//hooks.example.com/jobs", "not an absolute URL", "not an absolute URL"},
		{"ftp://hooks.example.com/", "scheme \"ftp\"", "scheme \"ftp\""},
		{"https://", "no host", "no host"},
		{"https:/path", "no host", "no host"},
		{"https://user:pw@hooks.example.com/", "user info", "user info"},
		{"https://hooks.example.com/#frag", "fragment", "fragment"},
		{"https://hooks.example.com/#", "fragment", "fragment"},
		{"https://hooks.example.com:99999/", "port", "port"},
		{"https://hooks.example.com/a b", "whitespace", "whitespace"},
		{long, "longer than 2048", "longer than 2048"},
	}
	for _, tt := range tests {
		for _, private := range []bool{false, true} {
			want := tt.strictErr
			if private {
				want = tt.privateErr
			}
			err := webhook.ValidateURL(tt.url, private)
			name := tt.url
			if len(name) > 60 {
				name = name[:60] + "..."
			}
			switch {
			case want == "" && err != nil:
				t.Errorf("ValidateURL(%q, %v) = %v, want nil", name, private, err)
			case want != "" && err == nil:
				t.Errorf("ValidateURL(%q, %v) = nil, want error containing %q", name, private, want)
			case want != "" && (!errors.Is(err, webhook.ErrInvalidURL) || !strings.Contains(err.Error(), want)):
				t.Errorf("ValidateURL(%q, %v) = %v, want ErrInvalidURL containing %q", name, private, err, want)
			}
		}
	}
}

// loopbackResolver returns a resolver whose DNS server (a tiny one started
// for the test) answers every A query with 127.0.0.1 and every AAAA query
// with no records.
func loopbackResolver(tb testing.TB) *net.Resolver {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen dns: %v", err)
	}
	done := make(chan struct{})
	tb.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := dnsAnswer(buf[:n], [4]byte{127, 0, 0, 1}); resp != nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	server := pc.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", server)
		},
	}
}

// dnsAnswer answers a one-question DNS query: type A with ip, anything
// else with no records.
func dnsAnswer(q []byte, ip [4]byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	off := 12
	for off < len(q) && q[off] != 0 {
		off += int(q[off]) + 1
	}
	off++ // the root label
	if off+4 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[off : off+2])
	question := q[12 : off+4]
	resp := make([]byte, 12, 64+len(question))
	copy(resp[0:2], q[0:2])                   // id
	resp[2], resp[3] = 0x80|(q[2]&0x01), 0x80 // QR, RD copied, RA, NOERROR
	binary.BigEndian.PutUint16(resp[4:6], 1)
	resp = append(resp, question...)
	if qtype == 1 {
		binary.BigEndian.PutUint16(resp[6:8], 1)
		resp = append(resp, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		resp = append(resp, ip[:]...)
	}
	return resp
}
