package sqlstore

import (
	"context"
	"fmt"
	"time"
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
