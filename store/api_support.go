package store

import "context"

// ForgetRate deletes the rate-limit counter of (kind, value) that Allow
// keeps, e.g. when every key about an address is deleted.
func (s *Redis) ForgetRate(ctx context.Context, kind, value string) error {
	return wrap("forget rate", s.rdb.Del(ctx, s.k.rate(kind, value)).Err())
}
