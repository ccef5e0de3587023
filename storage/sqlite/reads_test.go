package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
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

// TestPrefetch_codeSessions: an exchange that names its raw code reads the
// code, its PKCE session and its OpenID Connect session in one round trip;
// the sessions read after that are those rows, and a deleted one, or one
// the code never had, is not found.
func TestPrefetch_codeSessions(t *testing.T) {
	ctx := t.Context()
	s := newStore(t).(*sqlite.Store)
	defer s.Close()
	if err := s.CreateClient(ctx, storage.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	c, _ := s.GetClient(ctx, "c")
	req := fosite.NewRequest()
	req.ID, req.Client = "r", c
	req.Form.Set("code_challenge", "challenge")
	req.Session = &openid.DefaultSession{Subject: "alice"}
	for _, err := range []error{
		s.CreateAuthorizeCodeSession(ctx, "sig", req),
		s.CreatePKCERequestSession(ctx, "sig", req),
		s.CreateOpenIDConnectSession(ctx, "code.sig", req),
		s.CreateAuthorizeCodeSession(ctx, "sig2", req),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	var trips []string
	s.Observe(func(_ context.Context, op string) func(error) {
		if !strings.HasPrefix(op, "prepare") { // a statement's first use
			trips = append(trips, op)
		}
		return func(error) {}
	})
	pctx, pre := storage.WithPrefetch(ctx)
	pre.SetAuthorizeCode("code.sig")
	if _, err := s.GetAuthorizeCodeSession(pctx, "sig", &openid.DefaultSession{}); err != nil {
		t.Fatal(err)
	}
	p, err := s.GetPKCERequestSession(pctx, "sig", &openid.DefaultSession{})
	if err != nil {
		t.Fatal(err)
	}
	if p.GetRequestForm().Get("code_challenge") != "challenge" || p.GetClient().GetID() != "c" {
		t.Errorf("PKCE session: form %v client %v", p.GetRequestForm(), p.GetClient())
	}
	if len(trips) != 1 {
		t.Errorf("round trips %v, want one", trips)
	}
	// The code's invalidation deletes the kept OpenID Connect session in
	// its write set; fosite reads it after the commit and then deletes it,
	// which costs nothing more.
	tctx, err := s.BeginTX(pctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.InvalidateAuthorizeCodeSession(tctx, "sig"); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(tctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOpenIDConnectSession(ctx, "code.sig", fosite.NewAccessRequest(&openid.DefaultSession{})); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("OpenID Connect session after the code's invalidation: %v, want not found", err)
	}
	trips = nil
	o, err := s.GetOpenIDConnectSession(pctx, "code.sig", fosite.NewAccessRequest(&openid.DefaultSession{}))
	if err != nil {
		t.Fatal(err)
	}
	if o.GetSession().GetSubject() != "alice" || o.GetID() != "r" {
		t.Errorf("OpenID Connect session: %+v", o)
	}
	if err := s.DeleteOpenIDConnectSession(pctx, "code.sig"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetOpenIDConnectSession(pctx, "code.sig", fosite.NewAccessRequest(&openid.DefaultSession{})); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("deleted OpenID Connect session: %v, want not found", err)
	}
	if len(trips) != 0 {
		t.Errorf("round trips %v, want none", trips)
	}
	if err := s.DeletePKCERequestSession(pctx, "sig"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPKCERequestSession(pctx, "sig", &openid.DefaultSession{}); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("deleted PKCE session: %v, want not found", err)
	}
	if _, err := s.GetPKCERequestSession(ctx, "sig", &openid.DefaultSession{}); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("deleted PKCE session, read again: %v, want not found", err)
	}

	// A code without sessions.
	pctx, pre = storage.WithPrefetch(ctx)
	pre.SetAuthorizeCode("code.sig2")
	trips = nil
	if _, err := s.GetAuthorizeCodeSession(pctx, "sig2", &openid.DefaultSession{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetPKCERequestSession(pctx, "sig2", &openid.DefaultSession{}); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("no PKCE session: %v, want not found", err)
	}
	if _, err := s.GetOpenIDConnectSession(pctx, "code.sig2", fosite.NewAccessRequest(&openid.DefaultSession{})); !errors.Is(err, fosite.ErrNotFound) {
		t.Errorf("no OpenID Connect session: %v, want not found", err)
	}
	if len(trips) != 1 {
		t.Errorf("round trips %v, want one", trips)
	}
}
