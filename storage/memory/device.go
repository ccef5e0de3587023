package memory

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// devices holds device authorizations. Its maps are created on first use.
type devices struct {
	mu     sync.Mutex                       // guards every field below
	byHash map[[32]byte]*storage.DeviceAuth // DeviceCode cleared
	byUser map[string][32]byte              // user code → device-code hash
}

// lockDevices locks s.devices, makes its maps if they are not made yet, and returns it;
// the caller unlocks d.mu.
func (s *Store) lockDevices() *devices {
	d := &s.devices
	d.mu.Lock()
	if d.byHash == nil {
		d.byHash = map[[32]byte]*storage.DeviceAuth{}
		d.byUser = map[string][32]byte{}
	}
	return d
}

// byDeviceCode returns the authorization with the given device code, or an
// ErrNotFound error naming op. d.mu must be held.
func (d *devices) byDeviceCode(op, deviceCode string) (*storage.DeviceAuth, error) {
	if a, ok := d.byHash[sha256.Sum256([]byte(deviceCode))]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("memory: %s: %w", op, storage.ErrNotFound)
}

// byUserCode returns the authorization with the given user code, or an
// ErrNotFound error naming op. d.mu must be held.
func (d *devices) byUserCode(op, userCode string) (*storage.DeviceAuth, error) {
	if k, ok := d.byUser[userCode]; ok {
		return d.byHash[k], nil
	}
	return nil, fmt.Errorf("memory: %s: %w", op, storage.ErrNotFound)
}

func (d *devices) deleteExpired(before time.Time) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for k, a := range d.byHash {
		if a.ExpiresAt.Add(storage.DeviceRetention).Before(before) {
			delete(d.byHash, k)
			delete(d.byUser, a.UserCode)
			n++
		}
	}
	return n
}

func copyDevice(a *storage.DeviceAuth) storage.DeviceAuth {
	c := *a
	c.Scopes = slices.Clone(a.Scopes)
	c.Data = slices.Clone(a.Data)
	c.AMR = slices.Clone(a.AMR)
	return c
}

// CreateDeviceAuth implements storage.DeviceAuthStore.
func (s *Store) CreateDeviceAuth(_ context.Context, a storage.DeviceAuth) error {
	k := sha256.Sum256([]byte(a.DeviceCode))
	d := s.lockDevices()
	defer d.mu.Unlock()
	if _, ok := d.byHash[k]; ok {
		return fmt.Errorf("memory: device authorization: %w", storage.ErrAlreadyExists)
	}
	if _, ok := d.byUser[a.UserCode]; ok {
		return fmt.Errorf("memory: device authorization: user code: %w", storage.ErrAlreadyExists)
	}
	c := copyDevice(&a)
	c.DeviceCode = ""
	c.Status = storage.DevicePending
	c.PolledAt = time.Time{}
	d.byHash[k] = &c
	d.byUser[a.UserCode] = k
	return nil
}

// DeviceAuthByUserCode implements storage.DeviceAuthStore.
func (s *Store) DeviceAuthByUserCode(_ context.Context, userCode string) (storage.DeviceAuth, error) {
	d := s.lockDevices()
	defer d.mu.Unlock()
	a, err := d.byUserCode("device authorization", userCode)
	if err != nil {
		return storage.DeviceAuth{}, err
	}
	return copyDevice(a), nil
}

// DeviceAuth implements storage.DeviceAuthStore.
func (s *Store) DeviceAuth(_ context.Context, deviceCode string) (storage.DeviceAuth, error) {
	d := s.lockDevices()
	defer d.mu.Unlock()
	a, err := d.byDeviceCode("device authorization", deviceCode)
	if err != nil {
		return storage.DeviceAuth{}, err
	}
	return copyDevice(a), nil
}

// DecideDeviceAuth implements storage.DeviceAuthStore.
func (s *Store) DecideDeviceAuth(_ context.Context, userCode string, dec storage.DeviceDecision) (storage.DeviceAuth, error) {
	d := s.lockDevices()
	defer d.mu.Unlock()
	a, err := d.byUserCode("decide device authorization", userCode)
	if err != nil {
		return storage.DeviceAuth{}, err
	}
	if a.Status != storage.DevicePending || !dec.Now.Before(a.ExpiresAt) || (dec.Approve && a.SeenAt.Before(dec.SeenSince)) {
		return copyDevice(a), fmt.Errorf("memory: decide device authorization: %w", storage.ErrConflict)
	}
	if dec.Approve {
		a.Status = storage.DeviceApproved
		a.Subject, a.AuthTime, a.AMR = dec.Subject, dec.AuthTime, slices.Clone(dec.AMR)
	} else {
		a.Status, a.Reason = storage.DeviceDenied, dec.Reason
	}
	return copyDevice(a), nil
}

// PollDeviceAuth implements storage.DeviceAuthStore.
func (s *Store) PollDeviceAuth(_ context.Context, deviceCode, clientID string, now time.Time) (storage.DeviceAuth, storage.PollOutcome, error) {
	d := s.lockDevices()
	defer d.mu.Unlock()
	a, err := d.byDeviceCode("poll device authorization", deviceCode)
	if err == nil && a.ClientID != clientID {
		err = fmt.Errorf("memory: poll device authorization: %w", storage.ErrNotFound)
	}
	if err != nil {
		return storage.DeviceAuth{}, "", err
	}
	var out storage.PollOutcome
	switch {
	case !now.Before(a.ExpiresAt):
		out = storage.PollExpired
	case a.Status == storage.DeviceApproved:
		out = storage.PollRedeemed
		a.Status = storage.DeviceRedeemed
	case a.Status == storage.DeviceRedeemed:
		out = storage.PollUsed
	case a.Status == storage.DeviceDenied:
		out = storage.PollDenied
	case !a.PolledAt.IsZero() && now.Before(a.PolledAt.Add(a.Interval-storage.DevicePollSlack)):
		out = storage.PollSlowDown
		a.Interval += storage.DeviceSlowDownStep
	default:
		out = storage.PollPending
	}
	a.PolledAt = now
	return copyDevice(a), out, nil
}

// TouchDeviceAuth implements storage.DeviceAuthStore.
func (s *Store) TouchDeviceAuth(_ context.Context, deviceCode string, at time.Time) error {
	d := s.lockDevices()
	defer d.mu.Unlock()
	a, err := d.byDeviceCode("touch device authorization", deviceCode)
	if err != nil {
		return err
	}
	a.SeenAt = at
	return nil
}
