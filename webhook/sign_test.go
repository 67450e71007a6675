package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jobalert/jobalert/webhook"
)

// verify is a receiver-side Standard Webhooks verifier written from the
// spec, sharing no code with webhook.Sign: it checks the timestamp is within
// five minutes of now and that one of the space-separated v1 signatures is
// HMAC-SHA256(base64-decoded secret, id.timestamp.body).
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	if d := now.Unix() - sec; d > 300 || d < -300 {
		return fmt.Errorf("timestamp %d is %ds away from now", sec, d)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("bad secret: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, vs := range strings.Split(sigs, " ") {
		version, sig, ok := strings.Cut(vs, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no matching signature")
}

func TestSignSpecVector(t *testing.T) {
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		want   = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	got, err := webhook.Sign(secret, id, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", want)
	if err := verify(secret, h, body, ts); err != nil {
		t.Fatalf("verify spec vector: %v", err)
	}
	if err := verify(secret, h, []byte(`{"test": 2432232315}`), ts); err == nil {
		t.Fatal("verify accepted a tampered body")
	}
	if err := verify(secret, h, body, ts.Add(10*time.Minute)); err == nil {
		t.Fatal("verify accepted a stale timestamp")
	}
}

func TestSignSeveralSecrets(t *testing.T) {
	s1, s2 := mustSecret(t), mustSecret(t)
	ts := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	got, err := webhook.Sign(s1+" "+s2, "msg_1", ts, body)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(got, " ")
	if len(parts) != 2 {
		t.Fatalf("got %d signatures %q, want 2", len(parts), got)
	}
	one, _ := webhook.Sign(s1, "msg_1", ts, body)
	two, _ := webhook.Sign(s2, "msg_1", ts, body)
	if parts[0] != one || parts[1] != two {
		t.Fatalf("got %q, want %q %q", got, one, two)
	}
}

func TestNewSecret(t *testing.T) {
	s := mustSecret(t)
	if !strings.HasPrefix(s, "whsec_") {
		t.Fatalf("secret %q lacks whsec_", s)
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || len(b) != 32 {
		t.Fatalf("secret %q: %d bytes, err %v; want 32 bytes of base64", s, len(b), err)
	}
	if s == mustSecret(t) {
		t.Fatal("two secrets are equal")
	}
	for _, bad := range []string{"", "whsec_!!!", "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 8))} {
		if _, err := webhook.Sign(bad, "x", time.Now(), nil); !errors.Is(err, webhook.ErrInvalidSecret) {
			t.Errorf("Sign with secret %q: err %v, want ErrInvalidSecret", bad, err)
		}
	}
}

func mustSecret(tb testing.TB) string {
	tb.Helper()
	s, err := webhook.NewSecret()
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
