package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/ory/fosite/token/jwt"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/postgres"
)

func benchStore(b *testing.B) (*postgres.Store, *storage.Client) {
	b.Helper()
	ctx := b.Context()
	s, err := postgres.Open(ctx, newSchema(b), postgres.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	c := storage.Client{ID: "client", GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "offline_access"}, RedirectURIs: []string{"https://rp.example/cb"}}
	if err := s.CreateClient(ctx, c); err != nil {
		b.Fatal(err)
	}
	return s, &c
}

func benchRequest(c fosite.Client, id string) *fosite.Request {
	now := time.Now().UTC()
	return &fosite.Request{
		ID: id, RequestedAt: now, Client: c,
		RequestedScope: fosite.Arguments{"openid", "offline_access"}, GrantedScope: fosite.Arguments{"openid", "offline_access"},
		Form: map[string][]string{"grant_type": {"refresh_token"}},
		Session: &openid.DefaultSession{
			Claims:  &jwt.IDTokenClaims{Subject: "sub", Issuer: "https://op.example", AuthTime: now},
			Headers: &jwt.Headers{},
			ExpiresAt: map[fosite.TokenType]time.Time{
				fosite.AccessToken: now.Add(time.Hour), fosite.RefreshToken: now.Add(30 * 24 * time.Hour),
			},
			Subject: "sub",
		},
	}
}

// The benchmarks run on a fresh schema of WXOIDC_TEST_POSTGRES_DSN's
// database with the default pool (postgres.DefaultMaxConns connections), from
// GOMAXPROCS goroutines; raise -cpu (say -cpu 16) to keep the whole pool busy,
// as a provider under load does.

// BenchmarkCreateTokenPair measures the token endpoint's writes for a code
// exchange: an access token and a refresh token, in one transaction.
func BenchmarkCreateTokenPair(b *testing.B) {
	s, c := benchStore(b)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := n.Add(1)
			req := benchRequest(c, fmt.Sprint("req-", i))
			txCtx, err := s.BeginTX(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.CreateAccessTokenSession(txCtx, fmt.Sprint("at-", i), req); err != nil {
				b.Fatal(err)
			}
			if err := s.CreateRefreshTokenSession(txCtx, fmt.Sprint("rt-", i), fmt.Sprint("at-", i), req); err != nil {
				b.Fatal(err)
			}
			if err := s.Commit(txCtx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRefreshFlow measures what fosite does with storage on a refresh:
// look the refresh token up, then rotate it and write the new pair in one
// transaction.
func BenchmarkRefreshFlow(b *testing.B) {
	s, c := benchStore(b)
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		family := fmt.Sprint("req-", n.Add(1))
		req := benchRequest(c, family)
		cur := family + "-rt-0"
		if err := s.CreateRefreshTokenSession(ctx, cur, family+"-at-0", req); err != nil {
			b.Fatal(err)
		}
		for i := 1; pb.Next(); i++ {
			if _, err := s.GetRefreshTokenSession(ctx, cur, new(openid.DefaultSession)); err != nil {
				b.Fatal(err)
			}
			txCtx, err := s.BeginTX(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.RotateRefreshToken(txCtx, family, cur); err != nil {
				b.Fatal(err)
			}
			next := fmt.Sprintf("%s-rt-%d", family, i)
			at := fmt.Sprintf("%s-at-%d", family, i)
			if err := s.CreateAccessTokenSession(txCtx, at, req); err != nil {
				b.Fatal(err)
			}
			if err := s.CreateRefreshTokenSession(txCtx, next, at, req); err != nil {
				b.Fatal(err)
			}
			if err := s.Commit(txCtx); err != nil {
				b.Fatal(err)
			}
			cur = next
		}
	})
}
