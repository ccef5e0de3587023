package keys_test

import (
	"crypto"
	"encoding/base64"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/storage"
)

// FuzzLoadStoredKey feeds arbitrary stored keys (the decrypted private JWK,
// the public JWK, kid and alg) to Load: it must never panic, and a key it
// accepts must be published under its RFC 7638 thumbprint.
func FuzzLoadStoredKey(f *testing.F) {
	ctx := f.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cfg := keys.Config{Secret: testSecret, Algorithms: []string{keys.ES256, keys.EdDSA}, Now: func() time.Time { return now }}

	// Real keys as seeds; the RS256 row is reused so no iteration generates
	// an RSA key.
	seedStore := newMemStore()
	m, err := keys.New(seedStore, cfg)
	if err != nil {
		f.Fatal(err)
	}
	if err := m.Load(ctx); err != nil {
		f.Fatal(err)
	}
	sealer, err := keys.NewSealer(testSecret, "signing-keys")
	if err != nil {
		f.Fatal(err)
	}
	recs, _ := seedStore.SigningKeys(ctx)
	var rsaRec storage.SigningKey
	for _, r := range recs {
		if r.Algorithm == keys.RS256 {
			rsaRec = r
			continue
		}
		priv, err := sealer.Open(r.Private, []byte(r.KID))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(priv, r.Public, r.KID, r.Algorithm)
	}
	f.Add([]byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}`), []byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`), "kXCa7bVDGVN5MIYA6bHNw8fd-SOUVm3x-ff1mg3d0fA", keys.EdDSA)
	f.Add([]byte(`{}`), []byte(`{}`), "", "HS256")

	f.Fuzz(func(t *testing.T, priv, pub []byte, kid, alg string) {
		store := newMemStore()
		if err := store.CreateSigningKey(ctx, rsaRec); err != nil {
			t.Fatal(err)
		}
		sealed, err := sealer.Seal(priv, []byte(kid))
		if err != nil {
			t.Fatal(err)
		}
		if kid == rsaRec.KID {
			return
		}
		rec := storage.SigningKey{KID: kid, Algorithm: alg, Private: sealed, Public: pub, CreatedAt: now, ActivatesAt: now}
		if err := store.CreateSigningKey(ctx, rec); err != nil {
			t.Fatal(err)
		}
		m, err := keys.New(store, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Load(ctx); err != nil {
			return
		}
		if alg != keys.RS256 && alg != keys.ES256 && alg != keys.EdDSA {
			return // skipped, not loaded
		}
		k, err := m.VerificationKey(ctx, kid)
		if err != nil {
			t.Fatalf("accepted key %q not published: %v", kid, err)
		}
		if !k.IsPublic() || k.Algorithm != alg {
			t.Fatalf("published key: public %v alg %q, want public %q", k.IsPublic(), k.Algorithm, alg)
		}
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil || base64.RawURLEncoding.EncodeToString(tp) != kid {
			t.Fatalf("published key's thumbprint is not its kid %q", kid)
		}
	})
}
