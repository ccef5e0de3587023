package sqlite_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

func TestOpenReadOnly(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "w.db")
	if _, err := sqlite.OpenReadOnly(ctx, path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenReadOnly of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("OpenReadOnly created the file")
	}
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	key := storage.SigningKey{KID: "k1", Algorithm: "RS256", Private: []byte("sealed"), Public: []byte(`{"kty":"RSA"}`), CreatedAt: time.Now(), ActivatesAt: time.Now()}
	if err := s.CreateSigningKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ks, err := ro.SigningKeys(ctx); err != nil || len(ks) != 1 {
		t.Fatalf("SigningKeys: %v %v", ks, err)
	}
	key.KID = "k2"
	if err := ro.CreateSigningKey(ctx, key); err == nil {
		t.Fatal("a read-only store wrote")
	}
}
