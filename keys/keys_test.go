package keys_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/storage"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

const (
	publishDelay = 10 * time.Minute
	retention    = 24 * time.Hour
)

// newManager returns a Manager on store with the fake clock and test
// defaults, adjusted by opts.
func newManager(t *testing.T, store keys.Store, c *clock, opts ...func(*keys.Config)) *keys.Manager {
	t.Helper()
	cfg := keys.Config{
		Secret:       testSecret,
		PublishDelay: publishDelay,
		Retention:    retention,
		Now:          c.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := keys.New(store, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func withAlgs(algs ...string) func(*keys.Config) {
	return func(c *keys.Config) { c.Algorithms = algs }
}

// jwksKIDs returns the kids in m's prepared JWKS.
func jwksKIDs(t *testing.T, m *keys.Manager) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(m.JWKS(), &set); err != nil {
		t.Fatalf("decode JWKS: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return kids
}

func signingKID(t *testing.T, m *keys.Manager, alg string) string {
	t.Helper()
	k, err := m.SigningKey(alg)
	if err != nil {
		t.Fatalf("SigningKey(%s): %v", alg, err)
	}
	return k.KID
}

func states(t *testing.T, m *keys.Manager) map[string]keys.KeyState {
	t.Helper()
	infos, err := m.List(t.Context())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	out := map[string]keys.KeyState{}
	for _, in := range infos {
		out[in.KID] = in.State
	}
	return out
}

// sign signs claims with the current key of alg, as the provider does.
func sign(t *testing.T, m *keys.Manager, alg string, claims string) string {
	t.Helper()
	k, err := m.SigningKey(alg)
	if err != nil {
		t.Fatalf("SigningKey(%s): %v", alg, err)
	}
	s, err := k.Signer((&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(claims))
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// verifyWithJWKS verifies tok as a relying party would: parse with an
// explicit allow-list (K4), look the header kid up in the published JWKS
// bytes, and check the signature.
func verifyWithJWKS(jwks []byte, tok string, alg string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, err
	}
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return nil, errors.New("no kid in the JWS header")
	}
	found := set.Key(kid)
	if len(found) != 1 {
		return nil, errors.New("kid " + kid + " not in the JWKS")
	}
	return jws.Verify(found[0])
}

func TestConfig_Validate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     keys.Config
		wantErr []string // substrings, all must appear
	}{
		{name: "defaults", cfg: keys.Config{Secret: testSecret}},
		{name: "no secret", cfg: keys.Config{}, wantErr: []string{"secret is 0 bytes"}},
		{
			name:    "everything wrong",
			cfg:     keys.Config{Secret: []byte("short"), Algorithms: []string{"HS256"}, Retention: -1, PublishDelay: time.Second, RefreshInterval: time.Minute, RotationPeriod: -time.Hour},
			wantErr: []string{"secret is 5 bytes", `unsupported algorithm "HS256"`, "negative retention", "negative rotation period", "must exceed the refresh interval"},
		},
		{name: "rotation shorter than publish delay", cfg: keys.Config{Secret: testSecret, RotationPeriod: time.Minute}, wantErr: []string{"rotation period 1m0s must exceed the publish delay 10m0s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: got nil, want errors %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: got %q, want it to mention %q", err, w)
				}
			}
			if _, nerr := keys.New(newMemStore(), tc.cfg); nerr == nil {
				t.Errorf("New accepted a config Validate rejects")
			}
		})
	}
}

func TestSealer(t *testing.T) {
	s, err := keys.NewSealer(testSecret, "signing-keys")
	if err != nil {
		t.Fatal(err)
	}
	plain, aad := []byte(`{"d":"secret"}`), []byte("kid-1")
	sealed, err := s.Seal(plain, aad)
	if err != nil {
		t.Fatal(err)
	}
	if sealed[0] != 1 {
		t.Errorf("version byte: got %d, want 1", sealed[0])
	}
	if bytes.Contains(sealed, plain) {
		t.Errorf("sealed value contains the plaintext")
	}
	got, err := s.Open(sealed, aad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open: got %q, %v; want %q", got, err, plain)
	}
	again, _ := s.Seal(plain, aad)
	if bytes.Equal(again, sealed) {
		t.Errorf("two seals of the same plaintext are equal (nonce reuse)")
	}

	other, _ := keys.NewSealer([]byte("another-secret-another-secret-another"), "signing-keys")
	otherPurpose, _ := keys.NewSealer(testSecret, "wechat-session-keys")
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name   string
		sealer *keys.Sealer
		in     []byte
		aad    []byte
	}{
		{"version byte", s, flip(0), aad},
		{"nonce", s, flip(3), aad},
		{"ciphertext", s, flip(14), aad},
		{"tag", s, flip(len(sealed) - 1), aad},
		{"truncated", s, sealed[:20], aad},
		{"empty", s, nil, aad},
		{"wrong aad", s, sealed, []byte("kid-2")},
		{"no aad", s, sealed, nil},
		{"wrong secret", other, sealed, aad},
		{"wrong purpose", otherPurpose, sealed, aad},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.sealer.Open(tc.in, tc.aad)
			if !errors.Is(err, keys.ErrOpen) {
				t.Fatalf("Open: got %q, %v; want ErrOpen", got, err)
			}
		})
	}

	if _, err := keys.NewSealer([]byte("too short"), "x"); err == nil {
		t.Errorf("NewSealer accepted a 9-byte secret")
	}
	if _, err := keys.NewSealer(testSecret, ""); err == nil {
		t.Errorf("NewSealer accepted an empty purpose")
	}
}

func TestDeriveKey(t *testing.T) {
	a := keys.DeriveKey(testSecret, "fosite-global-secret", 32)
	if len(a) != 32 {
		t.Fatalf("len: got %d, want 32", len(a))
	}
	if !bytes.Equal(a, keys.DeriveKey(testSecret, "fosite-global-secret", 32)) {
		t.Errorf("DeriveKey is not deterministic")
	}
	if bytes.Equal(a, keys.DeriveKey(testSecret, "client-secret-hash", 32)) {
		t.Errorf("two purposes gave the same key")
	}
	if bytes.Equal(a, keys.DeriveKey([]byte("another-secret-another-secret-another"), "fosite-global-secret", 32)) {
		t.Errorf("two secrets gave the same key")
	}
	if got := len(keys.DeriveKey(testSecret, "x", 64)); got != 64 {
		t.Errorf("len: got %d, want 64", got)
	}
}

func TestManager_Lifecycle(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClock()
	store := newMemStore()
	m := newManager(t, store, c, withAlgs(keys.ES256))

	if m.Ready() {
		t.Fatalf("Ready before Load: got true")
	}
	if err := m.Load(ctx); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !m.Ready() {
		t.Fatalf("Ready after Load: got false")
	}
	if got, want := m.Algorithms(), []string{keys.RS256, keys.ES256}; !slices.Equal(got, want) {
		t.Fatalf("Algorithms: got %v, want %v", got, want)
	}
	if _, err := m.SigningKey(keys.EdDSA); !errors.Is(err, keys.ErrNoKey) {
		t.Errorf("SigningKey(EdDSA) not configured: got %v, want ErrNoKey", err)
	}
	old := signingKID(t, m, keys.ES256)
	rsaKID := signingKID(t, m, keys.RS256)
	if got := states(t, m); got[old] != keys.StateActive || got[rsaKID] != keys.StateActive || len(got) != 2 {
		t.Fatalf("states after first Load: got %v, want both active", got)
	}
	// Load again: nothing new is created.
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(states(t, m)); got != 2 {
		t.Fatalf("stored keys after second Load: got %d, want 2", got)
	}

	c.Add(time.Hour)
	infos, err := m.Rotate(ctx, keys.ES256)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if len(infos) != 1 || infos[0].State != keys.StatePending || !infos[0].ActivatesAt.Equal(c.Now().Add(publishDelay)) {
		t.Fatalf("Rotate: got %+v, want one pending ES256 key activating in %v", infos, publishDelay)
	}
	next := infos[0].KID

	// Pending: published, not signing.
	if got := signingKID(t, m, keys.ES256); got != old {
		t.Errorf("pending: signing kid got %s, want the old %s", got, old)
	}
	if kids := jwksKIDs(t, m); !slices.Contains(kids, next) || !slices.Contains(kids, old) {
		t.Errorf("pending: JWKS kids %v, want both %s and %s", kids, old, next)
	}
	if got := states(t, m); got[next] != keys.StatePending || got[old] != keys.StateActive {
		t.Errorf("pending: states %v", got)
	}

	// Activates; the old key retires but stays published.
	c.Add(publishDelay)
	if got := signingKID(t, m, keys.ES256); got != next {
		t.Errorf("activated: signing kid got %s, want %s", got, next)
	}
	if got := states(t, m); got[next] != keys.StateActive || got[old] != keys.StateRetired || got[rsaKID] != keys.StateActive {
		t.Errorf("activated: states %v", got)
	}
	if kids := jwksKIDs(t, m); !slices.Contains(kids, old) {
		t.Errorf("retired key left the JWKS early: %v", kids)
	}
	if _, err := m.VerificationKey(ctx, old); err != nil {
		t.Errorf("VerificationKey(retired): %v", err)
	}
	infos, _ = m.List(ctx)
	for _, in := range infos {
		if in.KID == old {
			if want := c.Now(); !in.RetiredAt.Equal(want) || !in.ExpiresAt.Equal(want.Add(retention)) {
				t.Errorf("retired key times: got RetiredAt %v ExpiresAt %v, want %v and +%v", in.RetiredAt, in.ExpiresAt, want, retention)
			}
		}
	}

	// Just before the end of retention it is still there; after, it is not.
	c.Add(retention - time.Second)
	if !slices.Contains(jwksKIDs(t, m), old) {
		t.Errorf("retired key left the JWKS before its retention ended")
	}
	c.Add(time.Second)
	if got := states(t, m)[old]; got != keys.StateExpired {
		t.Errorf("after retention: state %s, want expired", got)
	}
	if kids := jwksKIDs(t, m); slices.Contains(kids, old) || len(kids) != 2 {
		t.Errorf("after retention: JWKS kids %v, want the two current keys only", kids)
	}
	if _, err := m.VerificationKey(ctx, old); !errors.Is(err, keys.ErrNoKey) {
		t.Errorf("VerificationKey(expired): got %v, want ErrNoKey", err)
	}
	if len(m.KeySet().Keys) != 2 {
		t.Errorf("KeySet: got %d keys, want 2", len(m.KeySet().Keys))
	}
}

// TestManager_Rotation is the key-rotation test of issue 2: tokens signed
// before a rotation still verify after it, and the new key appears in the
// JWKS before the first token it signs.
func TestManager_Rotation(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{keys.RS256, keys.ES256, keys.EdDSA} {
		t.Run(alg, func(t *testing.T) {
			ctx := t.Context()
			c := newClock()
			m := newManager(t, newMemStore(), c, withAlgs(alg))
			if err := m.Load(ctx); err != nil {
				t.Fatal(err)
			}
			before := sign(t, m, alg, `{"sub":"before"}`)

			infos, err := m.Rotate(ctx, alg)
			if err != nil {
				t.Fatal(err)
			}
			newKID := infos[0].KID
			// Published at once, while the old key still signs.
			if !slices.Contains(jwksKIDs(t, m), newKID) {
				t.Fatalf("new key %s not in the JWKS right after Rotate", newKID)
			}
			if got := signingKID(t, m, alg); got == newKID {
				t.Fatalf("new key signs before PublishDelay")
			}
			jwksBeforeActivation := bytes.Clone(m.JWKS())

			c.Add(publishDelay)
			if got := signingKID(t, m, alg); got != newKID {
				t.Fatalf("after PublishDelay: signing kid %s, want %s", got, newKID)
			}
			after := sign(t, m, alg, `{"sub":"after"}`)

			// A relying party that fetched the JWKS before the new key
			// signed anything verifies the new token with it.
			if _, err := verifyWithJWKS(jwksBeforeActivation, after, alg); err != nil {
				t.Errorf("new token against the JWKS fetched before activation: %v", err)
			}
			// The old token still verifies against the current JWKS.
			got, err := verifyWithJWKS(m.JWKS(), before, alg)
			if err != nil || string(got) != `{"sub":"before"}` {
				t.Errorf("old token after rotation: got %q, %v", got, err)
			}
			if _, err := verifyWithJWKS(m.JWKS(), after, alg); err != nil {
				t.Errorf("new token: %v", err)
			}
			// The allow-list is enforced.
			if _, err := verifyWithJWKS(m.JWKS(), before, "HS256"); err == nil {
				t.Errorf("token verified with an alg outside the allow-list")
			}
		})
	}
}

func TestManager_JWKSHasNoPrivateMembers(t *testing.T) {
	t.Parallel()
	c := newClock()
	m := newManager(t, newMemStore(), c)
	if err := m.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(m.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 6 {
		t.Fatalf("JWKS: got %d keys, want 6 (3 algs × current + pending)", len(doc.Keys))
	}
	for _, k := range doc.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %v has private member %q", k["kid"], private)
			}
		}
		if k["use"] != "sig" || k["kid"] == "" || k["alg"] == nil {
			t.Errorf("JWKS key lacks use=sig, kid or alg: %v", k)
		}
	}
	for _, k := range m.KeySet().Keys {
		if !k.IsPublic() {
			t.Errorf("KeySet key %s is not public", k.KeyID)
		}
	}
}

func TestManager_EncryptedAtRest(t *testing.T) {
	t.Parallel()
	store := newMemStore()
	m := newManager(t, store, newClock())
	if err := m.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs, _ := store.SigningKeys(t.Context())
	if len(recs) != 3 {
		t.Fatalf("stored keys: got %d, want 3", len(recs))
	}
	for _, rec := range recs {
		k, err := m.SigningKey(rec.Algorithm)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := json.Marshal(k.JWK())
		if err != nil {
			t.Fatal(err)
		}
		var members map[string]string
		if err := json.Unmarshal(priv, &members); err != nil {
			t.Fatal(err)
		}
		d := members["d"]
		if d == "" {
			t.Fatalf("%s: private JWK has no d", rec.Algorithm)
		}
		raw, _ := base64.RawURLEncoding.DecodeString(d)
		if bytes.Contains(rec.Private, []byte(d)) || bytes.Contains(rec.Private, raw) {
			t.Errorf("%s: stored Private contains the private key", rec.Algorithm)
		}
		if bytes.Contains(rec.Public, []byte(d)) || bytes.Contains(rec.Public, []byte(`"d"`)) {
			t.Errorf("%s: stored Public contains the private key", rec.Algorithm)
		}
	}
}

func TestManager_WrongSecretOrTamperedRecord(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClock()
	store := newMemStore()
	m := newManager(t, store, c, withAlgs(keys.ES256, keys.EdDSA))
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}

	wrong := newManager(t, store, c, func(cfg *keys.Config) {
		cfg.Secret = []byte("another-secret-another-secret-another")
	})
	if err := wrong.Load(ctx); !errors.Is(err, keys.ErrOpen) {
		t.Errorf("Load with the wrong secret: got %v, want ErrOpen", err)
	}
	if wrong.Ready() {
		t.Errorf("Ready with the wrong secret: got true")
	}
	if _, err := wrong.Rotate(ctx); err == nil {
		t.Errorf("Rotate with the wrong secret succeeded")
	}
	if n := len(states(t, m)); n != 3 {
		t.Errorf("stored keys after refused rotation: got %d, want 3", n)
	}

	// Swap the sealed private parts of two rows: the AAD (kid) no longer
	// matches, so neither opens. A fresh manager must refuse to load.
	es, ed := signingKID(t, m, keys.ES256), signingKID(t, m, keys.EdDSA)
	recs, _ := store.SigningKeys(ctx)
	priv := map[string][]byte{}
	for _, r := range recs {
		priv[r.KID] = r.Private
	}
	store.update(es, func(k *storage.SigningKey) { k.Private = priv[ed] })
	store.update(ed, func(k *storage.SigningKey) { k.Private = priv[es] })
	fresh := newManager(t, store, c)
	if err := fresh.Load(ctx); !errors.Is(err, keys.ErrOpen) {
		t.Errorf("Load of swapped rows: got %v, want ErrOpen", err)
	}
	// A manager that failed to load keeps its previous snapshot.
	if err := m.Load(ctx); err == nil {
		t.Errorf("Load of swapped rows by a loaded manager: got nil error")
	}
	if got := signingKID(t, m, keys.ES256); got != es {
		t.Errorf("snapshot after failed Load: signing kid %s, want %s", got, es)
	}
}

func TestManager_Replicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClock()
	store := newMemStore()
	a := newManager(t, store, c, withAlgs(keys.ES256))
	b := newManager(t, store, c, withAlgs(keys.ES256))
	for _, m := range []*keys.Manager{a, b} {
		if err := m.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(states(t, a)); n != 2 {
		t.Fatalf("two replicas bootstrapped %d keys, want 2", n)
	}
	for _, alg := range []string{keys.RS256, keys.ES256} {
		if ka, kb := signingKID(t, a, alg), signingKID(t, b, alg); ka != kb {
			t.Errorf("%s: replicas sign with %s and %s", alg, ka, kb)
		}
	}

	// Both replicas rotate at the same instant (say, both ran `keys
	// rotate`): two pending keys with the same ActivatesAt. Once they
	// activate, both replicas pick the same one: the greater kid.
	c.Add(time.Hour)
	ra, err := a.Rotate(ctx, keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Rotate(ctx, keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	want := max(ra[0].KID, rb[0].KID)
	for _, m := range []*keys.Manager{a, b} {
		if err := m.Load(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c.Add(publishDelay)
	if ka, kb := signingKID(t, a, keys.ES256), signingKID(t, b, keys.ES256); ka != want || kb != want {
		t.Errorf("tie: replicas sign with %s and %s, want %s", ka, kb, want)
	}
	if !bytes.Equal(a.JWKS(), b.JWKS()) {
		t.Errorf("replicas publish different JWKS")
	}
	loser := min(ra[0].KID, rb[0].KID)
	if got := states(t, a)[loser]; got != keys.StateRetired {
		t.Errorf("tie loser: state %s, want retired", got)
	}
}

func TestManager_VerificationKeyReloadsOnMiss(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClock()
	store := newMemStore()
	a := newManager(t, store, c, withAlgs(keys.EdDSA))
	b := newManager(t, store, c, withAlgs(keys.EdDSA))
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}

	// A hit needs no storage read.
	reads := store.reads.Load()
	k, err := b.VerificationKey(ctx, signingKID(t, a, keys.EdDSA))
	if err != nil || k.Algorithm != keys.EdDSA || !k.IsPublic() {
		t.Fatalf("VerificationKey(hit): got %+v, %v", k, err)
	}
	if store.reads.Load() != reads {
		t.Errorf("a hit read storage")
	}

	// Replica a rotates; b has not reloaded but finds the key on a miss.
	infos, err := a.Rotate(ctx, keys.EdDSA)
	if err != nil {
		t.Fatal(err)
	}
	k, err = b.VerificationKey(ctx, infos[0].KID)
	if err != nil || k.KeyID != infos[0].KID {
		t.Fatalf("VerificationKey(new kid on another replica): got %v, %v", k, err)
	}

	// Misses reload at most once per second.
	c.Add(time.Second)
	reads = store.reads.Load()
	for range 5 {
		if _, err := b.VerificationKey(ctx, "unknown"); !errors.Is(err, keys.ErrNoKey) {
			t.Fatalf("VerificationKey(unknown): got %v, want ErrNoKey", err)
		}
	}
	if got := store.reads.Load() - reads; got != 1 {
		t.Errorf("storage reads for 5 misses in one second: got %d, want 1", got)
	}
	c.Add(time.Second)
	_, _ = b.VerificationKey(ctx, "unknown")
	if got := store.reads.Load() - reads; got != 2 {
		t.Errorf("storage reads after another second: got %d, want 2", got)
	}
}

// TestManager_Run drives the background loop in a synctest bubble, where
// time.Now and the ticker use the bubble's fake clock: automatic rotation,
// deletion after retention, and one rotation per period across two
// replicas sharing a leased store.
func TestManager_Run(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const period = 24 * time.Hour
		store := &leaseStore{memStore: newMemStore(), now: time.Now}
		cfg := keys.Config{
			Secret:          testSecret,
			Algorithms:      []string{keys.EdDSA},
			PublishDelay:    publishDelay,
			Retention:       retention,
			RotationPeriod:  period,
			RefreshInterval: 30 * time.Second,
		}
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		var replicas []*keys.Manager
		for range 2 {
			m, err := keys.New(store, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Load(ctx); err != nil {
				t.Fatal(err)
			}
			replicas = append(replicas, m)
			wg.Go(func() {
				if err := m.Run(ctx); err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		}
		count := func(alg string) int {
			recs, _ := store.SigningKeys(ctx)
			n := 0
			for _, r := range recs {
				if r.Algorithm == alg {
					n++
				}
			}
			return n
		}
		synctest.Wait()
		first := signingKID(t, replicas[0], keys.EdDSA)

		// Just before the period nothing rotates.
		time.Sleep(period - time.Minute)
		synctest.Wait()
		if n := count(keys.EdDSA); n != 1 {
			t.Fatalf("EdDSA keys before the rotation period: %d, want 1", n)
		}
		// One tick after the period: exactly one new key (lease), pending.
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := count(keys.EdDSA); n != 2 {
			t.Fatalf("EdDSA keys after the rotation period: %d, want 2", n)
		}
		if n := count(keys.RS256); n != 2 {
			t.Fatalf("RS256 keys after the rotation period: %d, want 2", n)
		}
		for _, m := range replicas {
			if got := signingKID(t, m, keys.EdDSA); got != first {
				t.Errorf("rotated key signs before PublishDelay")
			}
		}
		time.Sleep(publishDelay)
		synctest.Wait()
		second := signingKID(t, replicas[0], keys.EdDSA)
		if second == first || signingKID(t, replicas[1], keys.EdDSA) != second {
			t.Fatalf("after PublishDelay: replicas sign with %s and %s, want the new key", second, signingKID(t, replicas[1], keys.EdDSA))
		}
		// After Retention the first key is deleted from storage.
		time.Sleep(retention + time.Minute)
		synctest.Wait()
		infos, _ := replicas[0].List(ctx)
		for _, in := range infos {
			if in.KID == first {
				t.Errorf("retired key still stored after retention: %+v", in)
			}
		}
		if slices.Contains(jwksKIDs(t, replicas[1]), first) {
			t.Errorf("retired key still published after retention")
		}
		cancel()
		wg.Wait()
	})
}

// TestManager_Concurrent serves keys while rotating and reloading; run with
// -race.
func TestManager_Concurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClock()
	store := newMemStore()
	m := newManager(t, store, c, withAlgs(keys.ES256))
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				k, err := m.SigningKey(keys.ES256)
				if err != nil {
					t.Errorf("SigningKey: %v", err)
					return
				}
				// The clock may jump past this key's retention between
				// the two calls, so a miss is allowed; anything else is not.
				if _, err := m.VerificationKey(ctx, k.KID); err != nil && !errors.Is(err, keys.ErrNoKey) {
					t.Errorf("VerificationKey(signing kid): %v", err)
					return
				}
				if len(m.JWKS()) == 0 || len(m.KeySet().Keys) == 0 {
					t.Errorf("empty JWKS")
					return
				}
			}
		})
	}
	for range 5 {
		if _, err := m.Rotate(ctx, keys.ES256); err != nil {
			t.Fatal(err)
		}
		c.Add(publishDelay)
		if err := m.Load(ctx); err != nil {
			t.Fatal(err)
		}
		c.Add(retention / 2)
	}
	close(done)
	wg.Wait()
}

// TestSigner_ES256Deterministic: an ES256 key signs the same claims to the
// same token (RFC 6979) with its kid in the header, and the token verifies
// against the published JWKS; other claims give another signature.
func TestSigner_ES256Deterministic(t *testing.T) {
	m := newManager(t, newMemStore(), newClock(), withAlgs(keys.RS256, keys.ES256))
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	a := sign(t, m, keys.ES256, `{"sub":"a"}`)
	if b := sign(t, m, keys.ES256, `{"sub":"a"}`); b != a {
		t.Fatalf("same claims signed twice differ:\n%s\n%s", a, b)
	}
	c := sign(t, m, keys.ES256, `{"sub":"b"}`)
	if a[strings.LastIndexByte(a, '.'):] == c[strings.LastIndexByte(c, '.'):] {
		t.Fatal("different claims, same signature")
	}
	for _, tok := range []string{a, c} {
		if _, err := verifyWithJWKS(m.JWKS(), tok, keys.ES256); err != nil {
			t.Fatalf("verify %s: %v", tok, err)
		}
	}
}
