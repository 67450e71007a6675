package webhook

import "context"

// RecoverOrphans exposes recoverOrphans to the tests, which call it to
// see one round's decision without waiting for Run's ticker.
var RecoverOrphans = (*Service).recoverOrphans

// ClaimOnly claims up to n due deliveries as s would before sending them,
// and sends nothing: a process that dies right after its claim. It
// returns the ids claimed.
func ClaimOnly(s *Service, ctx context.Context, n int) ([]string, error) {
	attempts, _, err := s.claim(ctx, n)
	ids := make([]string, len(attempts))
	for i, a := range attempts {
		ids[i] = a.id
	}
	return ids, err
}
