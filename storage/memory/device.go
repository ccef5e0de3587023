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

func (d *devices) initLocked() {
	if d.byHash == nil {
		d.byHash = map[[32]byte]*storage.DeviceAuth{}
		d.byUser = map[string][32]byte{}
	}
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
	d := &s.devices
	d.mu.Lock()
	defer d.mu.Unlock()
	d.initLocked()
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
	d := &s.devices
	d.mu.Lock()
	defer d.mu.Unlock()
	d.initLocked()
	k, ok := d.byUser[userCode]
	if !ok {
		return storage.DeviceAuth{}, fmt.Errorf("memory: device authorization: %w", storage.ErrNotFound)
	}
	return copyDevice(d.byHash[k]), nil
}

// DeviceAuth implements storage.DeviceAuthStore.
func (s *Store) DeviceAuth(_ context.Context, deviceCode string) (storage.DeviceAuth, error) {
	k := sha256.Sum256([]byte(deviceCode))
	d := &s.devices
	d.mu.Lock()
	defer d.mu.Unlock()
	d.initLocked()
	a, ok := d.byHash[k]
	if !ok {
		return storage.DeviceAuth{}, fmt.Errorf("memory: device authorization: %w", storage.ErrNotFound)
	}
	return copyDevice(a), nil
}

// DecideDeviceAuth implements storage.DeviceAuthStore.
func (s *Store) DecideDeviceAuth(_ context.Context, userCode string, dec storage.DeviceDecision) (storage.DeviceAuth, error) {
	d := &s.devices
	d.mu.Lock()
	defer d.mu.Unlock()
	d.initLocked()
	k, ok := d.byUser[userCode]
	if !ok {
		return storage.DeviceAuth{}, fmt.Errorf("memory: decide device authorization: %w", storage.ErrNotFound)
	}
	a := d.byHash[k]
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
	k := sha256.Sum256([]byte(deviceCode))
	d := &s.devices
	d.mu.Lock()
	defer d.mu.Unlock()
	d.initLocked()
	a, ok := d.byHash[k]
	if !ok || a.ClientID != clientID {
		return storage.DeviceAuth{}, "", fmt.Errorf("memory: poll device authorization: %w", storage.ErrNotFound)
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
	k := sha256.Sum256([]byte(deviceCode))
	d := &s.devices
	d.mu.Lock()
	defer d.mu.Unlock()
	d.initLocked()
	a, ok := d.byHash[k]
	if !ok {
		return fmt.Errorf("memory: touch device authorization: %w", storage.ErrNotFound)
	}
	a.SeenAt = at
	return nil
}
