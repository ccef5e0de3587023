package keys_test

import (
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wxoidc/wxoidc/keys"
)

// idTokenClaims is a typical ID token payload (about 500 bytes).
const idTokenClaims = `{"iss":"https://id.example.com","sub":"u_8f3a2c1e9b7d4f60a1c2e3d4f5a6b7c8",` +
	`"aud":["wx-mini-program-client"],"exp":1772370000,"iat":1772366400,"auth_time":1772366390,` +
	`"nonce":"n-0S6_WzA2Mj","at_hash":"77QmUPtjPfzWtF2AnpK9RQ","azp":"wx-mini-program-client",` +
	`"sid":"5b1d2f3a-8c9e-4d0f-a1b2-c3d4e5f6a7b8","amr":["wechat"],"acr":"0",` +
	`"name":"微信用户","picture":"https://thirdwx.qlogo.cn/mmopen/vi_32/abcdefghijklmnopqrstuvwxyz/132",` +
	`"phone_number":"+8613800138000","phone_number_verified":true,"unionid":"o6_bmasdasdsad6_2sgVt7hMZOPfL"}`

func loadedManager(b *testing.B, algs ...string) *keys.Manager {
	b.Helper()
	m, err := keys.New(newMemStore(), keys.Config{Secret: testSecret, Algorithms: algs})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Load(b.Context()); err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkSignES256 signs an ID-token-sized claims set with go-jose v4
// using the key parsed once and kept in memory: per token it fetches the
// current key, builds a signer, signs and serialises.
func BenchmarkSignES256(b *testing.B) {
	m := loadedManager(b, keys.ES256)
	opts := (&jose.SignerOptions{}).WithType("JWT")
	payload := []byte(idTokenClaims)
	b.ReportAllocs()
	for b.Loop() {
		k, err := m.SigningKey(keys.ES256)
		if err != nil {
			b.Fatal(err)
		}
		s, err := k.Signer(opts)
		if err != nil {
			b.Fatal(err)
		}
		jws, err := s.Sign(payload)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := jws.CompactSerialize(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJWKS serves the prepared JWKS bytes, as the provider's handler
// does per request.
func BenchmarkJWKS(b *testing.B) {
	m := loadedManager(b)
	if _, err := m.Rotate(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		for pb.Next() {
			n += len(m.JWKS())
		}
		_ = n
	})
}

// BenchmarkVerificationKey looks up a published key by kid (a hit).
func BenchmarkVerificationKey(b *testing.B) {
	m := loadedManager(b, keys.ES256)
	k, err := m.SigningKey(keys.ES256)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.VerificationKey(ctx, k.KID); err != nil {
			b.Fatal(err)
		}
	}
}
