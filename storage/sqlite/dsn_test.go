package sqlite_test

import (
	"testing"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/conformance"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		name, dsn, want string
		wantErr         bool
	}{
		{name: "absolute", dsn: "sqlite:///var/lib/wxoidc/wxoidc.db", want: "/var/lib/wxoidc/wxoidc.db"},
		{name: "relative", dsn: "sqlite://data/wxoidc.db", want: "data/wxoidc.db"},
		{name: "memory", dsn: "sqlite://:memory:", want: sqlite.MemoryPath},
		{name: "no scheme", dsn: "/var/lib/wxoidc.db", wantErr: true},
		{name: "other scheme", dsn: "postgres://localhost/db", wantErr: true},
		{name: "no path", dsn: "sqlite://", wantErr: true},
		{name: "root", dsn: "sqlite:///", wantErr: true},
		{name: "query", dsn: "sqlite:///x.db?_pragma=foo", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sqlite.ParseDSN(tc.dsn)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseDSN(%q) error = %v, wantErr %v", tc.dsn, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("ParseDSN(%q) = %q, want %q", tc.dsn, got, tc.want)
			}
		})
	}
}

func newMemoryStore(t *testing.T) storage.Storage {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.MemoryPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		s.Close()
		t.Fatal(err)
	}
	return s
}

func TestConformanceInMemory(t *testing.T) {
	conformance.RunTests(t, newMemoryStore)
	conformance.RunConcurrencyTests(t, newMemoryStore)
}

func TestMigrateTwice(t *testing.T) {
	s := newStore(t)
	defer s.Close()
	if err := s.(*sqlite.Store).Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}
