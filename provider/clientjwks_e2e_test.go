package provider_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// TestRequestObject_JWKSURI: a client that registered a jwks_uri signs its
// request objects; the provider fetches the keys once and reuses them,
// fetches again once when the client rotates to a new kid, not for every
// unknown kid, and answers a client whose jwks_uri fails with
// invalid_request_object at its redirect URI.
func TestRequestObject_JWKSURI(t *testing.T) {
	var skew atomic.Int64 // the provider's clock runs ahead by this much
	e := newEnv(t, func(c *provider.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	const client, secret = "ro-uri", "ro-uri-secret-0123456789abcdef0123456789"
	var (
		mu      sync.Mutex
		served  = map[string]*ecdsa.PrivateKey{}
		hits    atomic.Int32
		failing atomic.Bool
	)
	newKey := func(kid string) *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		served[kid] = k
		mu.Unlock()
		return k
	}
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		mu.Lock()
		var set jose.JSONWebKeySet
		for kid, k := range served {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"})
		}
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=3600")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(rp.Close)

	now := time.Now()
	for _, c := range []storage.Client{
		{ID: client, JWKSURI: rp.URL + "/jwks?token=rp-private-0123"},
		{ID: client + "-broken", JWKSURI: rp.URL + "/broken?token=rp-private-0123"},
	} {
		c.SecretHash = provider.HashClientSecret(testSecret, secret)
		c.RedirectURIs, c.GrantTypes, c.Scopes = []string{webRedirect}, []string{"authorization_code"}, []string{"openid"}
		c.TokenEndpointAuthMethod, c.RequestObjectSigningAlg = storage.AuthMethodBasic, "ES256"
		c.CreatedAt, c.UpdatedAt = now, now
		if err := provider.ValidateClient(c, false); err != nil {
			t.Fatal(err)
		}
		if err := e.store.CreateClient(e.ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	sign := func(clientID, kid string, key *ecdsa.PrivateKey) string {
		t.Helper()
		payload, _ := json.Marshal(map[string]any{"iss": clientID, "aud": e.issuer, "client_id": clientID, "response_type": "code",
			"redirect_uri": webRedirect, "scope": "openid", "state": "state-jwks-uri", "exp": time.Now().Add(time.Minute).Unix()})
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := obj.CompactSerialize()
		return out
	}
	authorize := func(clientID, obj string) url.Values {
		t.Helper()
		q := url.Values{"client_id": {clientID}, "response_type": {"code"}, "scope": {"openid"}, "request": {obj},
			"redirect_uri": {webRedirect}, "state": {"state-jwks-uri"}}
		return e.authorize(e.issuer + "/oauth2/authorize?" + q.Encode()).Query()
	}
	wantCode := func(t *testing.T, got url.Values) {
		t.Helper()
		if got.Get("code") == "" || got.Get("state") != "state-jwks-uri" {
			t.Fatalf("authorization refused: %v", got)
		}
	}
	wantHits := func(t *testing.T, n int32) {
		t.Helper()
		if got := hits.Load(); got != n {
			t.Fatalf("%d fetches of the jwks_uri, want %d", got, n)
		}
	}

	k1 := newKey("rp-1")
	t.Run("fetched once, then cached", func(t *testing.T) {
		for range 3 {
			wantCode(t, authorize(client, sign(client, "rp-1", k1)))
		}
		wantHits(t, 1)
	})
	t.Run("a new kid is fetched once", func(t *testing.T) {
		k2 := newKey("rp-2")
		// An unknown kid is fetched again at most every 15 seconds.
		skew.Add(int64(16 * time.Second))
		wantCode(t, authorize(client, sign(client, "rp-2", k2)))
		wantHits(t, 2)
		wantCode(t, authorize(client, sign(client, "rp-2", k2)))
		wantHits(t, 2)
	})
	t.Run("unknown kids do not make the provider hammer the jwks_uri", func(t *testing.T) {
		stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for range 10 {
			got := authorize(client, sign(client, "not-registered", stranger))
			if got.Get("error") != "invalid_request_object" {
				t.Fatalf("a request object signed with an unregistered key: %v", got)
			}
		}
		wantHits(t, 2)
	})
	t.Run("a failing jwks_uri is the client's error, at its redirect URI", func(t *testing.T) {
		failing.Store(true)
		skew.Add(int64(16 * time.Second))
		for range 3 {
			got := authorize(client+"-broken", sign(client+"-broken", "rp-1", k1))
			if got.Get("error") != "invalid_request_object" || !strings.Contains(got.Get("error_description"), "jwks_uri") {
				t.Fatalf("broken jwks_uri: %v", got)
			}
			if d := got.Get("error_description"); strings.Contains(d, "rp-private") || strings.Contains(d, strings.TrimPrefix(rp.URL, "http://")) {
				t.Fatalf("the error names the URI: %v", got)
			}
		}
		wantHits(t, 3) // once: the failure is remembered for a while
		// The cached keys of the working client still serve.
		wantCode(t, authorize(client, sign(client, "rp-1", k1)))
		wantHits(t, 3)
	})
	if logs := e.logs.String(); strings.Contains(logs, "rp-private") {
		t.Error("a jwks_uri's query reached the log")
	}
}
