package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// AcquireLease implements storage.LeaseStore with one conditional upsert:
// the row is taken over only if holder already holds it or it has expired.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := s.now()
	n, err := s.execN(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`,
		name, holder, micros(now.Add(ttl)), micros(now))
	if err != nil {
		return false, s.wrap(fmt.Sprintf("acquire lease %q", name), err)
	}
	return n == 1, nil
}

// ReleaseLease implements storage.LeaseStore.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.exec(ctx, "DELETE FROM leases WHERE name = ? AND holder = ?", name, holder)
	return s.wrap(fmt.Sprintf("release lease %q", name), err)
}

// takeRate is TakeRate in one conditional upsert (GCRA): expires_at holds
// the limit's theoretical arrival time, which is also when it has refilled
// completely. A new limit starts at now + cost; an existing one moves to
// max(tat, now) + cost, only if tat + cost ≤ now + tolerance.
const takeRate = `INSERT INTO rate_limits (name, expires_at) VALUES (?, ?)` + takeRateConflict

const takeRateConflict = `
ON CONFLICT (name) DO UPDATE SET expires_at = CASE WHEN rate_limits.expires_at + ? > excluded.expires_at THEN rate_limits.expires_at + ? ELSE excluded.expires_at END
WHERE rate_limits.expires_at + ? <= ?`

// TakeRate implements storage.RateStore.
func (s *Store) TakeRate(ctx context.Context, name string, n int, rate float64, burst int, now time.Time) (bool, error) {
	cost, tolerance, ok := storage.RateCost(n, rate, burst)
	if !ok {
		return false, nil
	}
	t := now.UnixMicro()
	changed, err := s.execN(ctx, s.async(ctx, takeRate, s.asyncQ.takeRate), name, t+cost, cost, cost, cost, t+tolerance)
	if err != nil {
		return false, s.wrap(fmt.Sprintf("take rate %q", name), err)
	}
	return changed == 1, nil
}
