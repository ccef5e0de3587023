package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

const deviceColumns = "user_code, kind, client_id, scopes, data, status, subject, auth_time, amr, created_at, expires_at, interval_us, polled_at, reason, seen_at"

// scanDevice reads deviceColumns (plus extra destinations) into a record.
func scanDevice(row interface{ Scan(...any) error }, extra ...any) (storage.DeviceAuth, error) {
	var d storage.DeviceAuth
	var scopes, amr, status string
	var auth, created, exp, interval, polled, seen int64
	dest := append([]any{&d.UserCode, &d.Kind, &d.ClientID, &scopes, &d.Data, &status, &d.Subject, &auth, &amr, &created, &exp, &interval, &polled, &d.Reason, &seen}, extra...)
	if err := row.Scan(dest...); err != nil {
		return storage.DeviceAuth{}, err
	}
	d.Scopes, d.AMR, d.Status = strings.Fields(scopes), strings.Fields(amr), storage.DeviceStatus(status)
	d.AuthTime, d.CreatedAt, d.ExpiresAt, d.PolledAt = fromMicros(auth), fromMicros(created), fromMicros(exp), fromMicros(polled)
	d.Interval = time.Duration(interval) * time.Microsecond
	d.SeenAt = fromMicros(seen)
	if d.Data == nil {
		d.Data = []byte{}
	}
	return d, nil
}

// CreateDeviceAuth implements storage.DeviceAuthStore.
func (s *Store) CreateDeviceAuth(ctx context.Context, d storage.DeviceAuth) error {
	data := d.Data
	if data == nil {
		data = []byte{}
	}
	_, err := s.exec(ctx, "INSERT INTO device_auths (device_hash, "+deviceColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, '', 0, '', ?, ?, ?, 0, '', ?)",
		hash(d.DeviceCode), d.UserCode, d.Kind, d.ClientID, strings.Join(d.Scopes, " "), data, string(storage.DevicePending),
		micros(d.CreatedAt), micros(d.ExpiresAt), d.Interval.Microseconds(), micros(d.SeenAt))
	return s.wrap("create device authorization", err)
}

// DeviceAuthByUserCode implements storage.DeviceAuthStore.
func (s *Store) DeviceAuthByUserCode(ctx context.Context, userCode string) (storage.DeviceAuth, error) {
	return s.readDevice(ctx, "SELECT "+deviceColumns+" FROM device_auths WHERE user_code = ?", userCode)
}

// DeviceAuth implements storage.DeviceAuthStore.
func (s *Store) DeviceAuth(ctx context.Context, deviceCode string) (storage.DeviceAuth, error) {
	return s.readDevice(ctx, "SELECT "+deviceColumns+" FROM device_auths WHERE device_hash = ?", hash(deviceCode))
}

func (s *Store) readDevice(ctx context.Context, query string, key string) (storage.DeviceAuth, error) {
	st, err := s.prepared(ctx, s.r, query)
	if err != nil {
		return storage.DeviceAuth{}, s.wrap("device authorization", err)
	}
	d, err := scanDevice(st.QueryRowContext(ctx, key))
	return d, s.wrap("device authorization", err)
}

// writeRow runs a statement with RETURNING on the writer, outside any
// transaction, and returns its row.
func (s *Store) writeRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	st, err := s.prepared(ctx, s.w, query)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

// decideDevice's last argument is the approval's SeenSince (0: any).
const decideDevice = `UPDATE device_auths SET status = ?, subject = ?, auth_time = ?, amr = ?, reason = ?
WHERE user_code = ? AND status = 'pending' AND expires_at > ? AND seen_at >= ?
RETURNING ` + deviceColumns

// DecideDeviceAuth implements storage.DeviceAuthStore with one conditional
// update; only when it changes nothing is the record read to say why.
func (s *Store) DecideDeviceAuth(ctx context.Context, userCode string, dec storage.DeviceDecision) (storage.DeviceAuth, error) {
	status, subject, authTime, amr, reason, seen := storage.DeviceDenied, "", int64(0), "", dec.Reason, int64(0)
	if dec.Approve {
		status, subject, authTime, amr, reason, seen = storage.DeviceApproved, dec.Subject, micros(dec.AuthTime), strings.Join(dec.AMR, " "), "", micros(dec.SeenSince)
	}
	row, err := s.writeRow(ctx, decideDevice, string(status), subject, authTime, amr, reason, userCode, micros(dec.Now), seen)
	if err != nil {
		return storage.DeviceAuth{}, s.wrap("decide device authorization", err)
	}
	d, err := scanDevice(row)
	if err == nil {
		return d, nil
	}
	if !isNotFound(s.wrap("", err)) {
		return storage.DeviceAuth{}, s.wrap("decide device authorization", err)
	}
	d, err = s.DeviceAuthByUserCode(ctx, userCode)
	if err != nil {
		return storage.DeviceAuth{}, err
	}
	return d, fmt.Errorf("%s: decide device authorization: %w", s.d.Name, storage.ErrConflict)
}

// pollDevice is PollDeviceAuth's one statement. Every SET expression reads
// the row as it was before the update; RETURNING gives the row after it,
// outcome included, under the row lock, so the outcome is this poll's own.
// Arguments: now ×6, slack, step, device hash, client id.
const pollDevice = `UPDATE device_auths SET
  outcome = CASE
    WHEN expires_at <= ? THEN 'expired'
    WHEN status = 'approved' THEN 'redeemed'
    WHEN status = 'redeemed' THEN 'used'
    WHEN status = 'denied' THEN 'denied'
    WHEN polled_at > 0 AND polled_at + interval_us - ? > ? THEN 'slow_down'
    ELSE 'pending' END,
  status = CASE WHEN status = 'approved' AND expires_at > ? THEN 'redeemed' ELSE status END,
  interval_us = CASE WHEN status = 'pending' AND expires_at > ? AND polled_at > 0 AND polled_at + interval_us - ? > ? THEN interval_us + ? ELSE interval_us END,
  polled_at = ?
%s
WHERE device_hash = ? AND client_id = ?
RETURNING ` + deviceColumns + `, outcome`

// pollDevice is the dialect's poll statement (with its asynchronous
// commit, where it has one).
func (s *Store) pollDevice() string {
	from := ""
	if s.d.AsyncCommitFrom != "" {
		from = "FROM " + s.d.AsyncCommitFrom
	}
	return fmt.Sprintf(pollDevice, from)
}

// PollDeviceAuth implements storage.DeviceAuthStore in one statement.
func (s *Store) PollDeviceAuth(ctx context.Context, deviceCode, clientID string, now time.Time) (storage.DeviceAuth, storage.PollOutcome, error) {
	t, slack := micros(now), storage.DevicePollSlack.Microseconds()
	row, err := s.writeRow(ctx, s.pollDevice(), t, slack, t, t, t, slack, t, storage.DeviceSlowDownStep.Microseconds(), t, hash(deviceCode), clientID)
	if err != nil {
		return storage.DeviceAuth{}, "", s.wrap("poll device authorization", err)
	}
	var outcome string
	d, err := scanDevice(row, &outcome)
	if err != nil {
		return storage.DeviceAuth{}, "", s.wrap("poll device authorization", err)
	}
	return d, storage.PollOutcome(outcome), nil
}

// TouchDeviceAuth implements storage.DeviceAuthStore.
func (s *Store) TouchDeviceAuth(ctx context.Context, deviceCode string, at time.Time) error {
	n, err := s.execN(ctx, "UPDATE device_auths SET seen_at = ? WHERE device_hash = ?", micros(at), hash(deviceCode))
	if err != nil {
		return s.wrap("touch device authorization", err)
	}
	if n == 0 {
		return fmt.Errorf("%s: touch device authorization: %w", s.d.Name, storage.ErrNotFound)
	}
	return nil
}
