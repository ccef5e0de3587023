package keys_test

import (
	"slices"
	"testing"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/memory"
)

var (
	_ keys.Store  = storage.Storage(nil)
	_ keys.Leaser = storage.Storage(nil)
	_ keys.Store  = (*memory.Store)(nil)
)

// TestManager_MemoryStorage runs the rotation story against the real
// in-memory backend: a token signed before a rotation verifies after it,
// and a second replica sees the same keys.
func TestManager_MemoryStorage(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClock()
	store := memory.New()
	t.Cleanup(func() { store.Close() })
	a := newManager(t, store, c, withAlgs(keys.ES256))
	b := newManager(t, store, c, withAlgs(keys.ES256))
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	before := sign(t, a, keys.ES256, `{"sub":"before"}`)
	infos, err := a.Rotate(ctx, keys.ES256)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(jwksKIDs(t, b), infos[0].KID) {
		t.Fatalf("rotated key not in the other replica's JWKS")
	}
	c.Add(publishDelay)
	if ka, kb := signingKID(t, a, keys.ES256), signingKID(t, b, keys.ES256); ka != infos[0].KID || kb != ka {
		t.Fatalf("signing kids after activation: %s and %s, want %s", ka, kb, infos[0].KID)
	}
	if _, err := verifyWithJWKS(b.JWKS(), before, keys.ES256); err != nil {
		t.Errorf("token signed before the rotation: %v", err)
	}
}
