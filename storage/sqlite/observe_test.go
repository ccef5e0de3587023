package sqlite_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// The observer sees each database round trip, named, including those a
// fosite transaction sends at commit; never a statement's arguments.
func TestStore_Observe(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	s.Observe(func(_ context.Context, op string) func(error) {
		return func(err error) {
			mu.Lock()
			seen = append(seen, op)
			mu.Unlock()
		}
	})
	c := storage.Client{ID: "secret-client-id", GrantTypes: []string{"authorization_code"}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	tctx, err := s.BeginTX(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := fosite.NewRequest()
	req.ID, req.Client, req.Session = "req-1", &c, &fosite.DefaultSession{Subject: "alice"}
	if err := s.CreateAccessTokenSession(tctx, "at-signature", req); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(tctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{"insert clients", "begin", "insert oauth2_access", "commit"} {
		if !slices.Contains(seen, want) {
			t.Errorf("round trips %q lack %q", seen, want)
		}
	}
	for _, op := range seen {
		if strings.Contains(op, "secret-client-id") || strings.Contains(op, "at-signature") {
			t.Errorf("a round trip's name carries an argument: %q", op)
		}
	}
}
