package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wxoidc/wxoidc/storage"
)

// Store is what the manager needs of storage; [storage.Storage] satisfies
// it. Implementations must be safe for concurrent use and follow
// [storage.KeyStore]'s contract: CreateSigningKey fails with
// [storage.ErrAlreadyExists] for a taken kid, SigningKeys returns every key
// oldest first, and DeleteSigningKey of a missing kid is not an error.
type Store interface {
	CreateSigningKey(ctx context.Context, k storage.SigningKey) error
	SigningKeys(ctx context.Context) ([]storage.SigningKey, error)
	DeleteSigningKey(ctx context.Context, kid string) error
}

// Leaser is optional behaviour of a [Store] (it is [storage.LeaseStore]).
// When the store has it, [Manager.Run] takes the lease [RotationLease]
// before an automatic rotation, so replicas sharing a database do not all
// rotate at once.
type Leaser interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// RotationLease is the name of the lease taken for automatic rotation.
const RotationLease = "keys/rotate"

// ErrNoKey reports that no key fits a request: no signing key for an
// algorithm, or no published key with a kid.
var ErrNoKey = errors.New("keys: no key")

// Defaults for zero [Config] fields.
const (
	DefaultPublishDelay    = 10 * time.Minute
	DefaultRetention       = 24 * time.Hour
	DefaultRefreshInterval = 30 * time.Second
)

// Config configures a [Manager]. Zero values mean the documented defaults.
type Config struct {
	// Secret is the system secret, at least [MinSecretLength] bytes;
	// required. Private keys are sealed under a key derived from it (see
	// [Sealer]). Every replica and the `wxoidc keys` commands MUST use the
	// same secret: a key sealed under another secret cannot be loaded.
	Secret []byte

	// Algorithms lists the algorithms to keep keys for: RS256, ES256,
	// EdDSA. RS256 is always added (OpenID Connect's default). Empty means
	// all three.
	Algorithms []string

	// PublishDelay is how long a rotated key is in the JWKS before it signs.
	// It MUST exceed the JWKS cache lifetime relying parties use (the
	// max-age the provider serves the JWKS with, or their own refresh
	// period) plus RefreshInterval, so that every replica and every relying
	// party has the key before the first token it signs. Default 10m; it
	// must be greater than RefreshInterval.
	PublishDelay time.Duration

	// Retention is how long a retired key stays published after it stopped
	// signing. It MUST be at least the longest lifetime of any token a key
	// signs (ID tokens, JWT access tokens, and id_token_hint acceptance),
	// plus the clock skew tolerated between replicas; otherwise tokens stop
	// verifying before they expire. Default 24h.
	Retention time.Duration

	// RotationPeriod makes Run rotate an algorithm automatically once its
	// current key has been signing (since its ActivatesAt) this long. 0
	// means manual rotation only (the provider's configuration sets 30
	// days). If set, it must exceed PublishDelay.
	RotationPeriod time.Duration

	// RefreshInterval is how often Run reloads keys from storage, which is
	// how keys rotated by another replica or by `wxoidc keys rotate` reach
	// this one. Default 30s.
	RefreshInterval time.Duration

	// Now returns the current time; nil means time.Now.
	Now func() time.Time

	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
}

// withDefaults returns c with zero fields set to their defaults and
// Algorithms normalised (RS256 first, no duplicates).
func (c Config) withDefaults() Config {
	if c.PublishDelay == 0 {
		c.PublishDelay = DefaultPublishDelay
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Algorithms = KeptAlgorithms(c.Algorithms)
	return c
}

// Validate reports every problem with c (after defaults), joined with
// errors.Join; nil if there is none.
func (c Config) Validate() error {
	d := c.withDefaults()
	var errs []error
	if len(c.Secret) < MinSecretLength {
		errs = append(errs, fmt.Errorf("keys: secret is %d bytes, want at least %d", len(c.Secret), MinSecretLength))
	}
	for _, a := range d.Algorithms {
		if !Supported(a) {
			errs = append(errs, fmt.Errorf("keys: unsupported algorithm %q (want %s)", a, OneOf(SupportedAlgorithms())))
		}
	}
	if c.PublishDelay < 0 {
		errs = append(errs, fmt.Errorf("keys: negative publish delay %v", c.PublishDelay))
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("keys: negative retention %v", c.Retention))
	}
	if c.RotationPeriod < 0 {
		errs = append(errs, fmt.Errorf("keys: negative rotation period %v", c.RotationPeriod))
	}
	if c.RefreshInterval < 0 {
		errs = append(errs, fmt.Errorf("keys: negative refresh interval %v", c.RefreshInterval))
	}
	if d.PublishDelay > 0 && d.RefreshInterval > 0 && d.PublishDelay <= d.RefreshInterval {
		errs = append(errs, fmt.Errorf("keys: publish delay %v must exceed the refresh interval %v", d.PublishDelay, d.RefreshInterval))
	}
	if c.RotationPeriod > 0 && d.PublishDelay > 0 && c.RotationPeriod <= d.PublishDelay {
		errs = append(errs, fmt.Errorf("keys: rotation period %v must exceed the publish delay %v", c.RotationPeriod, d.PublishDelay))
	}
	return errors.Join(errs...)
}

// Manager owns the signing keys: it loads them from storage, keeps the
// decrypted private keys in memory, serves the current signing key and the
// JWKS, and rotates and deletes keys. All methods are safe for concurrent
// use; SigningKey, VerificationKey (on a hit), JWKS, KeySet and Ready do no
// I/O and take no lock.
type Manager struct {
	store  Store
	leaser Leaser // nil if store has no leases
	cfg    Config // defaults applied, Validate passed
	sealer *Sealer
	holder string // lease holder name, unique per Manager

	// loadMu serialises Load, so an older read of storage never replaces a
	// newer snapshot.
	loadMu sync.Mutex
	// snap is the current immutable snapshot; never nil after New. Replaced
	// by Load (under loadMu) and, when the published set changes with time
	// alone, by a CompareAndSwap in JWKS.
	snap atomic.Pointer[snapshot]
	// lastMissReload is the time (UnixNano, from cfg.Now) of the last
	// reload caused by a VerificationKey miss.
	lastMissReload atomic.Int64
}

// New returns a Manager for store. It validates cfg but does no I/O: call
// [Manager.Load] before serving, and [Manager.Run] in the background.
func New(store Store, cfg Config) (*Manager, error) {
	if store == nil {
		return nil, errors.New("keys: nil store")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	sealer, err := NewSealer(cfg.Secret, PurposeSigningKeys)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("keys: holder id: %w", err)
	}
	m := &Manager{
		store:  store,
		cfg:    cfg,
		sealer: sealer,
		holder: "keys-" + base64.RawURLEncoding.EncodeToString(id[:]),
	}
	m.cfg.Logger = cfg.Logger.With("component", "keys")
	m.leaser, _ = store.(Leaser)
	m.snap.Store(m.buildSnapshot(nil, nil, cfg.Now()))
	return m, nil
}

// Algorithms returns the configured algorithms, RS256 first.
func (m *Manager) Algorithms() []string { return slices.Clone(m.cfg.Algorithms) }

// Load reads the keys from storage, decrypts the private parts of keys it
// has not seen before and keeps them in memory, and replaces the in-memory
// snapshot. For every configured algorithm that has no stored key at all it
// first creates one that is active at once (a fresh deployment has no tokens
// to protect).
//
// If any stored key of a supported algorithm cannot be opened or fails its
// checks (typically: a different system secret), Load returns an error and
// keeps the previous snapshot. Keys of unknown algorithms are skipped with a
// warning. Load is safe to call concurrently with everything else.
func (m *Manager) Load(ctx context.Context) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()
	return m.loadLocked(ctx)
}

func (m *Manager) loadLocked(ctx context.Context) error {
	recs, err := m.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load: %w", err)
	}
	if missing := m.missingAlgorithms(recs); len(missing) > 0 {
		now := m.cfg.Now()
		for _, alg := range missing {
			rec, _, err := newRecord(m.sealer, alg, now, now)
			if err != nil {
				return err
			}
			if err := m.store.CreateSigningKey(ctx, rec); err != nil {
				return fmt.Errorf("keys: store first %s key: %w", alg, err)
			}
			m.cfg.Logger.Info("created first signing key", "alg", alg, "kid", rec.KID)
		}
		if recs, err = m.store.SigningKeys(ctx); err != nil {
			return fmt.Errorf("keys: load: %w", err)
		}
	}
	prev := m.snap.Load()
	loaded := make(map[string]*loadedKey, len(recs))
	var errs []error
	for _, rec := range recs {
		if !Supported(rec.Algorithm) {
			m.cfg.Logger.Warn("skipping stored key of unsupported algorithm", "kid", rec.KID, "alg", rec.Algorithm)
			continue
		}
		if e, ok := prev.byKID[rec.KID]; ok && e.key.signer.Algorithm == rec.Algorithm && bytes.Equal(e.key.sealed, rec.Private) {
			loaded[rec.KID] = e.key
			continue
		}
		lk, err := openRecord(m.sealer, rec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		loaded[rec.KID] = lk
	}
	if err := errors.Join(errs...); err != nil {
		if len(loaded) == 0 && errors.Is(err, ErrOpen) {
			return fmt.Errorf("%w (%w)", ErrWrongSecret, err)
		}
		return err
	}
	m.snap.Store(m.buildSnapshot(recs, loaded, m.cfg.Now()))
	return nil
}

// ErrWrongSecret reports that the system secret is not the deployment's:
// none of the stored signing keys opens with it. (The sealed private keys
// are the deployment's keyed check value: AES-GCM under a key derived from
// the secret authenticates them.)
var ErrWrongSecret = errors.New("keys: the system secret is not this deployment's: it opens none of the stored signing keys")

// CheckSecret reports, with an error wrapping [ErrWrongSecret], a system
// secret that opens none of the stored signing keys, so that a command run
// with the wrong secret stops before it writes anything made with it
// (client secrets are hashed with a key derived from it). It only reads;
// with no stored key (a deployment that never started) it returns nil.
func (m *Manager) CheckSecret(ctx context.Context) error {
	recs, err := m.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("keys: load: %w", err)
	}
	tried := 0
	for _, rec := range recs {
		if !Supported(rec.Algorithm) {
			continue
		}
		tried++
		if _, err := m.sealer.Open(rec.Private, []byte(rec.KID)); err == nil {
			return nil
		}
	}
	if tried == 0 {
		return nil
	}
	return fmt.Errorf("%w (%d stored keys tried)", ErrWrongSecret, tried)
}

// missingAlgorithms returns the configured algorithms with no stored key.
func (m *Manager) missingAlgorithms(recs []storage.SigningKey) []string {
	var missing []string
	for _, alg := range m.cfg.Algorithms {
		if !slices.ContainsFunc(recs, func(r storage.SigningKey) bool { return r.Algorithm == alg }) {
			missing = append(missing, alg)
		}
	}
	return missing
}

// SigningKey returns the key that signs now for alg: of the loaded keys of
// that algorithm whose ActivatesAt has passed, the one with the latest
// ActivatesAt (ties: the greater KID). It reads memory only. It returns an
// error wrapping [ErrNoKey] if alg is not configured or has no active key
// (before the first Load, for example). The result is shared: do not modify
// it.
func (m *Manager) SigningKey(alg string) (*SigningKey, error) {
	if !slices.Contains(m.cfg.Algorithms, alg) {
		return nil, fmt.Errorf("%w: algorithm %q is not configured", ErrNoKey, alg)
	}
	if e := m.snap.Load().current(alg, m.cfg.Now()); e != nil {
		return e.key.signer, nil
	}
	return nil, fmt.Errorf("%w: no active %s key", ErrNoKey, alg)
}

// Ready reports whether keys are loaded: an RS256 key signs now.
func (m *Manager) Ready() bool {
	_, err := m.SigningKey(RS256)
	return err == nil
}

// VerificationKey returns the public key with kid if it is published now
// (pending, active, or retired for less than Retention); the key's
// algorithm is its Algorithm field, which callers must use as the allow-list
// when verifying. On a miss it reloads from storage, at most once per second
// for the whole Manager, in case another replica created the key, and then
// returns an error wrapping [ErrNoKey]. The result is a copy the caller may
// keep.
func (m *Manager) VerificationKey(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	if k, ok := m.published(kid); ok {
		return k, nil
	}
	now := m.cfg.Now().UnixNano()
	last := m.lastMissReload.Load()
	if now-last >= int64(time.Second) && m.lastMissReload.CompareAndSwap(last, now) {
		if err := m.Load(ctx); err != nil {
			return nil, fmt.Errorf("keys: reload for kid %q: %w", kid, err)
		}
		if k, ok := m.published(kid); ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: no published key with kid %q", ErrNoKey, kid)
}

func (m *Manager) published(kid string) (*jose.JSONWebKey, bool) {
	e, ok := m.snap.Load().byKID[kid]
	if !ok || !e.publishedAt(m.cfg.Now(), m.cfg.Retention) {
		return nil, false
	}
	k := e.key.public
	return &k, true
}
