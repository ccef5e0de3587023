package keys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// KeyState is where a key stands in its lifecycle at some moment.
type KeyState string

// The states of a key; see the package documentation for the rules.
const (
	// StatePending: published, not signing yet (now < ActivatesAt).
	StatePending KeyState = "pending"
	// StateActive: the key that signs for its algorithm.
	StateActive KeyState = "active"
	// StateRetired: a newer key signs; still published until ExpiresAt.
	StateRetired KeyState = "retired"
	// StateExpired: past ExpiresAt; no longer published, Run deletes it.
	StateExpired KeyState = "expired"
)

// KeyInfo describes a stored key and its state at the time it was made.
type KeyInfo struct {
	KID       string
	Algorithm string
	State     KeyState
	// CreatedAt is when the key was stored and published.
	CreatedAt time.Time
	// ActivatesAt is when the key starts (or started) signing.
	ActivatesAt time.Time
	// RetiredAt is when the key stops (or stopped) signing: the
	// ActivatesAt of the next key of its algorithm. Zero while there is no
	// newer key.
	RetiredAt time.Time
	// ExpiresAt is RetiredAt+Retention, when the key leaves the JWKS and
	// becomes deletable. Zero while RetiredAt is.
	ExpiresAt time.Time
}

// lifecycle returns the KeyInfo of every record at now, in the order of
// recs. It needs no decryption, so it works for keys of any algorithm.
func lifecycle(recs []storage.SigningKey, now time.Time, retention time.Duration) []KeyInfo {
	infos := make([]KeyInfo, len(recs))
	byAlg := make(map[string][]int)
	for i, r := range recs {
		infos[i] = KeyInfo{KID: r.KID, Algorithm: r.Algorithm, CreatedAt: r.CreatedAt, ActivatesAt: r.ActivatesAt}
		byAlg[r.Algorithm] = append(byAlg[r.Algorithm], i)
	}
	for _, seq := range byAlg {
		slices.SortFunc(seq, func(a, b int) int {
			return less(recs[a].ActivatesAt, recs[a].KID, recs[b].ActivatesAt, recs[b].KID)
		})
		for j, i := range seq {
			in := &infos[i]
			if j+1 < len(seq) {
				in.RetiredAt = recs[seq[j+1]].ActivatesAt
				in.ExpiresAt = in.RetiredAt.Add(retention)
			}
			switch {
			case now.Before(in.ActivatesAt):
				in.State = StatePending
			case in.RetiredAt.IsZero() || now.Before(in.RetiredAt):
				in.State = StateActive
			case now.Before(in.ExpiresAt):
				in.State = StateRetired
			default:
				in.State = StateExpired
			}
		}
	}
	return infos
}

// List reports every stored key (of any algorithm) with its state now,
// oldest first. It reads storage directly and decrypts nothing, so it shows
// what every replica will act on at its next reload.
func (m *Manager) List(ctx context.Context) ([]KeyInfo, error) {
	recs, err := m.store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("keys: list: %w", err)
	}
	return lifecycle(recs, m.cfg.Now(), m.cfg.Retention), nil
}

// Rotate creates a new key for each given algorithm (every configured
// algorithm if none is given), published at once and signing from
// now+PublishDelay. It works on storage directly, so `wxoidc keys rotate`
// run against a live deployment's database takes effect in every replica at
// their next reload; this Manager reloads at once.
//
// Before creating anything Rotate loads the stored keys, so it refuses to
// run with a system secret that cannot open them (a key sealed under the
// wrong secret would break every replica). It returns the new keys.
//
// In a transaction (storage.InTx: ctx carries it, e.g. to store the
// rotation's audit events with the keys), the keys are stored in it and
// this Manager does not reload: what it would read may yet be rolled
// back. The caller calls Load once the transaction has ended.
func (m *Manager) Rotate(ctx context.Context, algs ...string) ([]KeyInfo, error) {
	if len(algs) == 0 {
		algs = m.cfg.Algorithms
	}
	var errs []error
	for _, a := range algs {
		if !slices.Contains(m.cfg.Algorithms, a) {
			errs = append(errs, fmt.Errorf("keys: rotate: algorithm %q is not configured", a))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := m.Load(ctx); err != nil {
		return nil, fmt.Errorf("keys: rotate: %w", err)
	}
	infos, err := m.rotate(ctx, algs)
	if storage.InTransaction(ctx) {
		return infos, err
	}
	if lerr := m.Load(ctx); lerr != nil {
		err = errors.Join(err, fmt.Errorf("keys: reload after rotation: %w", lerr))
	}
	return infos, err
}

// rotate generates the keys first, then stores them one by one.
func (m *Manager) rotate(ctx context.Context, algs []string) ([]KeyInfo, error) {
	now := m.cfg.Now()
	activates := now.Add(m.cfg.PublishDelay)
	recs := make([]storage.SigningKey, 0, len(algs))
	for i, alg := range algs {
		if slices.Contains(algs[:i], alg) {
			continue
		}
		rec, _, err := newRecord(m.sealer, alg, now, activates)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	var infos []KeyInfo
	for _, rec := range recs {
		if err := m.store.CreateSigningKey(ctx, rec); err != nil {
			return infos, fmt.Errorf("keys: store rotated %s key: %w", rec.Algorithm, err)
		}
		m.cfg.Logger.Info("rotated signing key", "alg", rec.Algorithm, "kid", rec.KID, "activates_at", rec.ActivatesAt)
		infos = append(infos, KeyInfo{
			KID: rec.KID, Algorithm: rec.Algorithm, State: StatePending,
			CreatedAt: rec.CreatedAt, ActivatesAt: rec.ActivatesAt,
		})
	}
	return infos, nil
}

// Run keeps the keys up to date until ctx ends, then returns nil. Every
// RefreshInterval (and once at the start) it reloads from storage, rotates
// each configured algorithm whose current key has signed for RotationPeriod
// (if set, and if no newer key is pending), and deletes keys past their
// ExpiresAt. Failures are logged and retried at the next tick.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.RefreshInterval)
	defer t.Stop()
	for {
		if err := m.maintain(ctx); err != nil && ctx.Err() == nil {
			m.cfg.Logger.Error("key maintenance failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// maintain is one step of Run.
func (m *Manager) maintain(ctx context.Context) error {
	if err := m.Load(ctx); err != nil {
		return err
	}
	var errs []error
	if m.cfg.RotationPeriod > 0 {
		if err := m.rotateDue(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	infos, err := m.List(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	deleted := 0
	for _, in := range infos {
		if in.State != StateExpired {
			continue
		}
		if err := m.store.DeleteSigningKey(ctx, in.KID); err != nil {
			errs = append(errs, fmt.Errorf("keys: delete expired key %s: %w", in.KID, err))
			continue
		}
		deleted++
		m.cfg.Logger.Info("deleted expired signing key", "alg", in.Algorithm, "kid", in.KID, "expired_at", in.ExpiresAt)
	}
	if deleted > 0 {
		if err := m.Load(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dueAlgorithms returns the configured algorithms whose newest key has been
// signing for at least RotationPeriod at now.
func (m *Manager) dueAlgorithms(infos []KeyInfo, now time.Time) []string {
	var due []string
	for _, alg := range m.cfg.Algorithms {
		var newest *KeyInfo
		for i := range infos {
			in := &infos[i]
			if in.Algorithm == alg && (newest == nil || less(in.ActivatesAt, in.KID, newest.ActivatesAt, newest.KID) > 0) {
				newest = in
			}
		}
		if newest != nil && !now.Before(newest.ActivatesAt.Add(m.cfg.RotationPeriod)) {
			due = append(due, alg)
		}
	}
	return due
}

// rotateDue rotates the algorithms that are due, under the rotation lease
// when the store has leases; it re-reads storage after taking the lease, so
// a rotation another replica just made is not repeated.
func (m *Manager) rotateDue(ctx context.Context) error {
	infos, err := m.List(ctx)
	if err != nil {
		return err
	}
	if len(m.dueAlgorithms(infos, m.cfg.Now())) == 0 {
		return nil
	}
	if m.leaser != nil {
		ok, err := m.leaser.AcquireLease(ctx, RotationLease, m.holder, time.Minute)
		if err != nil {
			return fmt.Errorf("keys: acquire rotation lease: %w", err)
		}
		if !ok {
			return nil // another replica rotates; we see its keys at the next reload
		}
		defer func() {
			// Release with a context that survives ctx's end, so a
			// shutdown mid-rotation does not hold the lease for its TTL.
			if err := m.leaser.ReleaseLease(context.WithoutCancel(ctx), RotationLease, m.holder); err != nil {
				m.cfg.Logger.Warn("releasing the rotation lease failed; it ends with its TTL", "err", err)
			}
		}()
		if infos, err = m.List(ctx); err != nil {
			return err
		}
	}
	due := m.dueAlgorithms(infos, m.cfg.Now())
	if len(due) == 0 {
		return nil
	}
	_, err = m.rotate(ctx, due)
	if lerr := m.Load(ctx); lerr != nil {
		err = errors.Join(err, lerr)
	}
	return err
}
