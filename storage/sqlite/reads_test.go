package sqlite_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// TestGetClient_cache shows GetClient's cache: a store sees its own
// changes at once, and another store on the same database (another
// replica) sees them within a second.
func TestGetClient_cache(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "wxoidc.db")
	open := func() *sqlite.Store {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := open(), open()
	if err := a.CreateClient(ctx, storage.Client{ID: "c", Name: "one"}); err != nil {
		t.Fatal(err)
	}
	name := func(s *sqlite.Store) string {
		t.Helper()
		c, err := s.GetClient(ctx, "c")
		if err != nil {
			return err.Error()
		}
		return c.(*storage.Client).Name
	}
	if got := name(a) + name(b); got != "oneone" {
		t.Fatalf("names %q", got)
	}
	rename := func(to string) func(storage.Client) (storage.Client, error) {
		return func(c storage.Client) (storage.Client, error) { c.Name = to; return c, nil }
	}
	if err := a.UpdateClient(ctx, "c", rename("two")); err != nil {
		t.Fatal(err)
	}
	if got := name(a); got != "two" {
		t.Errorf("the writing store reads %q after its update, want two", got)
	}
	deadline := time.Now().Add(3 * time.Second)
	for name(b) != "two" {
		if time.Now().After(deadline) {
			t.Fatalf("another store still reads %q 3 s after the update", name(b))
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A returned client is a copy: changing it changes nothing cached.
	c, err := a.GetClient(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	c.(*storage.Client).Name = "mutated"
	if got := name(a); got != "two" {
		t.Errorf("after mutating a returned client the store reads %q", got)
	}

	if err := a.DeleteClient(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetClient(ctx, "c"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetClient after delete: %v, want ErrNotFound", err)
	}
}

// TestPrefetch_refreshTokenUser shows the SQL backends reading a refresh
// token's user with the token when asked (storage.Prefetch).
func TestPrefetch_refreshTokenUser(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	defer s.Close()
	if err := s.CreateClient(ctx, storage.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	res, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app", OpenID: "o", NewSubject: "alice", Name: "Alice"})
	u := res.User
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.GetClient(ctx, "c")
	req := fosite.NewRequest()
	req.ID, req.Client = "r", c
	req.Session = &openid.DefaultSession{Subject: "alice"}
	if err := s.CreateRefreshTokenSession(ctx, "rt", "at", req); err != nil {
		t.Fatal(err)
	}
	pctx, pre := storage.WithPrefetch(ctx)
	if _, err := s.GetRefreshTokenSession(pctx, "rt", &openid.DefaultSession{}); err != nil {
		t.Fatal(err)
	}
	got, ok := pre.User("alice")
	if !ok {
		t.Fatal("the refresh token's user was not prefetched")
	}
	if got.Name != u.Name || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("prefetched %+v, want %+v", got, u)
	}
}
