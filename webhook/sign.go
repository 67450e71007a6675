package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// ErrInvalidSecret is wrapped by errors about a malformed signing secret.
var ErrInvalidSecret = errors.New("invalid webhook secret")

// NewSecret returns a new signing secret: "whsec_" followed by the standard
// base64 of 32 random bytes.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new webhook secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// decodeSecret returns the key bytes of a "whsec_<base64>" secret (the
// prefix is optional), which must be 24 to 64 bytes long.
func decodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w: not base64 after %q", ErrInvalidSecret, SecretPrefix)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("%w: %d bytes, want 24 to 64", ErrInvalidSecret, len(key))
	}
	return key, nil
}

// Sign returns the Standard Webhooks webhook-signature header value for one
// message: "v1,<base64 HMAC-SHA256(key, id + "." + unix seconds + "." +
// body)>". secret is one "whsec_" secret, or several separated by spaces
// (while a rotated secret is still valid), giving one signature per secret
// in the same order, separated by spaces. It fails only on a malformed
// secret.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	secrets := strings.Fields(secret)
	if len(secrets) == 0 {
		return "", fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := decodeSecret(s)
		if err != nil {
			return "", err
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write(strconv.AppendInt(nil, ts.Unix(), 10))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}
