package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/conformance"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

func newStore(t *testing.T) storage.Storage {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "wxoidc.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) { conformance.RunTests(t, newStore) }

func TestConcurrency(t *testing.T) { conformance.RunConcurrencyTests(t, newStore) }
