package provider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// jwksServer is a client's jwks_uri: it serves the key set with the given
// Cache-Control and counts the requests it receives.
type jwksServer struct {
	srv          *httptest.Server
	hits         atomic.Int32
	mu           sync.Mutex
	kids         []string // the keys served, by kid
	cacheControl string
	body         []byte        // served instead of the set when not nil
	block        chan struct{} // when not nil, requests wait for it to close
}

func newJWKSServer(t *testing.T, kids ...string) *jwksServer {
	s := &jwksServer{kids: kids}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		block, body, cc := s.block, s.body, s.cacheControl
		kids := append([]string(nil), s.kids...)
		s.mu.Unlock()
		if block != nil {
			select {
			case <-block:
			case <-r.Context().Done():
				return
			}
		}
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		if body != nil {
			w.Write(body)
			return
		}
		w.Write(jwksOf(t, kids...))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) set(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func jwksOf(t *testing.T, kids ...string) []byte {
	set := jose.JSONWebKeySet{}
	for _, kid := range kids {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeClock is the cache's clock: a fixed start moved on by Add.
type fakeClock struct{ elapsed atomic.Int64 }

func (c *fakeClock) Now() time.Time {
	return time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC).Add(time.Duration(c.elapsed.Load()))
}

func (c *fakeClock) Add(d time.Duration) { c.elapsed.Add(int64(d)) }

// newTestJWKSCache is the cache of a production provider (not dev), with
// a fake clock and a log.
func newTestJWKSCache(t *testing.T) (*jwksCache, *fakeClock, *bytes.Buffer) {
	clock := &fakeClock{}
	var logs bytes.Buffer
	var mu sync.Mutex
	p := &Provider{outbound: newOutboundClient(nil)}
	log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, nil))
	return newJWKSCache(p.fetch, clock.Now, log), clock, &logs
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func kidsOf(set *jose.JSONWebKeySet) string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return strings.Join(out, ",")
}

func TestJWKSCache_Cached(t *testing.T) {
	s := newJWKSServer(t, "k1")
	c, clock, _ := newTestJWKSCache(t)
	for i := range 10 {
		set, err := c.keys(t.Context(), s.srv.URL, "k1")
		if err != nil {
			t.Fatal(err)
		}
		if got := kidsOf(set); got != "k1" {
			t.Fatalf("kids %s, want k1", got)
		}
		clock.Add(time.Duration(i) * time.Second)
	}
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for 10 lookups within the default TTL, want 1", n)
	}
}

func TestJWKSCache_MaxAge(t *testing.T) {
	tests := []struct {
		name         string
		cacheControl string
		fresh        time.Duration // still cached just before this
	}{
		{"max-age", "public, max-age=300", 300 * time.Second},
		{"max-age below the floor", "max-age=5", jwksMinTTL},
		{"no-store takes the floor", "no-store", jwksMinTTL},
		{"max-age above the ceiling", "max-age=604800", jwksMaxTTL},
		{"none", "", jwksDefaultTTL},
		{"invalid max-age", "max-age=soon", jwksDefaultTTL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newJWKSServer(t, "k1")
			s.cacheControl = tc.cacheControl
			c, clock, _ := newTestJWKSCache(t)
			get := func() {
				t.Helper()
				if _, err := c.keys(t.Context(), s.srv.URL, "k1"); err != nil {
					t.Fatal(err)
				}
			}
			get()
			clock.Add(tc.fresh - time.Second)
			get()
			if n := s.hits.Load(); n != 1 {
				t.Fatalf("%d fetches within %v, want 1", n, tc.fresh)
			}
			clock.Add(2 * time.Second)
			get()
			if n := s.hits.Load(); n != 2 {
				t.Fatalf("%d fetches after %v, want 2", n, tc.fresh)
			}
		})
	}
}

func TestJWKSTTL_Age(t *testing.T) {
	h := http.Header{"Cache-Control": {"max-age=600"}, "Age": {"300"}}
	if got := jwksTTL(h); got != 300*time.Second {
		t.Fatalf("max-age 600 with Age 300: %v, want 5m", got)
	}
}

// A kid the cached set lacks makes one refetch (the client rotated its
// keys); more requests naming unknown kids fetch again only after
// jwksRefetchAfter.
func TestJWKSCache_Rotation(t *testing.T) {
	s := newJWKSServer(t, "k1")
	c, clock, _ := newTestJWKSCache(t)
	if _, err := c.keys(t.Context(), s.srv.URL, "k1"); err != nil {
		t.Fatal(err)
	}
	clock.Add(jwksRefetchAfter)
	s.set(func(s *jwksServer) { s.kids = []string{"k1", "k2"} })
	set, err := c.keys(t.Context(), s.srv.URL, "k2")
	if err != nil {
		t.Fatal(err)
	}
	if got := kidsOf(set); got != "k1,k2" || s.hits.Load() != 2 {
		t.Fatalf("after rotation: kids %s after %d fetches, want k1,k2 after 2", got, s.hits.Load())
	}
	if _, err := c.keys(t.Context(), s.srv.URL, "k2"); err != nil || s.hits.Load() != 2 {
		t.Fatalf("the rotated-in key was not cached: %v, %d fetches", err, s.hits.Load())
	}
	// An attacker naming kid after kid gets the cached set (which will not
	// verify), not a fetch each: the refetch for k2 was this interval's.
	for i := range 50 {
		set, err := c.keys(t.Context(), s.srv.URL, fmt.Sprintf("bogus-%d", i))
		if err != nil || kidsOf(set) != "k1,k2" {
			t.Fatalf("unknown kid: %v %v", set, err)
		}
	}
	if n := s.hits.Load(); n != 2 {
		t.Fatalf("50 unknown kids made %d fetches in all, want still 2", n)
	}
	clock.Add(jwksRefetchAfter)
	for i := range 50 {
		c.keys(t.Context(), s.srv.URL, fmt.Sprintf("bogus-again-%d", i))
	}
	if n := s.hits.Load(); n != 3 {
		t.Fatalf("50 unknown kids after the refetch interval: %d fetches, want 3 (one more)", n)
	}
}

// Concurrent misses share one fetch.
func TestJWKSCache_Concurrent(t *testing.T) {
	s := newJWKSServer(t, "k1")
	release := make(chan struct{})
	s.block = release
	c, _, _ := newTestJWKSCache(t)
	const n = 20
	var wg sync.WaitGroup
	var entered atomic.Int32
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			entered.Add(1)
			_, err := c.keys(t.Context(), s.srv.URL, "k1")
			errs <- err
		})
	}
	for entered.Load() < n || s.hits.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	// Without a single flight every caller would have reached the server
	// by now; give stragglers a moment before answering.
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := s.hits.Load(); got != 1 {
		t.Fatalf("%d concurrent lookups made %d fetches, want 1", n, got)
	}
}

// A caller that gives up does not end the fetch the others wait for.
func TestJWKSCache_CallerCancels(t *testing.T) {
	s := newJWKSServer(t, "k1")
	release := make(chan struct{})
	s.block = release
	c, _, _ := newTestJWKSCache(t)
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		_, err := c.keys(ctx, s.srv.URL, "k1")
		first <- err
	}()
	for s.hits.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() {
		_, err := c.keys(t.Context(), s.srv.URL, "k1")
		second <- err
	}()
	cancel()
	if err := <-first; err == nil {
		t.Fatal("the cancelled caller got keys")
	}
	close(release)
	if err := <-second; err != nil {
		t.Fatalf("the other caller: %v", err)
	}
	if n := s.hits.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
}

// Bad answers are errors that name no URI, are remembered for
// jwksRefetchAfter and are logged with the host only.
func TestJWKSCache_BadAnswers(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	privSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv, KeyID: "p"}}})
	tests := []struct {
		name    string
		setup   func(t *testing.T, s *jwksServer, c *jwksCache)
		wantErr string
	}{
		{"oversized", func(t *testing.T, s *jwksServer, c *jwksCache) {
			s.body = bytes.Repeat([]byte(" "), maxFetchedBytes+1)
		}, "larger than"},
		{"not JSON", func(t *testing.T, s *jwksServer, c *jwksCache) { s.body = []byte("<html>") }, "not a JSON Web Key Set"},
		{"empty set", func(t *testing.T, s *jwksServer, c *jwksCache) { s.body = []byte(`{"keys":[]}`) }, "holds no key"},
		{"private key", func(t *testing.T, s *jwksServer, c *jwksCache) { s.body = privSet }, "public keys only"},
		{"slow", func(t *testing.T, s *jwksServer, c *jwksCache) {
			block := make(chan struct{})
			t.Cleanup(func() { close(block) })
			s.block = block
			c.timeout = 100 * time.Millisecond
		}, "did not answer in time"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newJWKSServer(t, "k1")
			c, clock, logs := newTestJWKSCache(t)
			tc.setup(t, s, c)
			uri := s.srv.URL + "/jwks?access=secret-in-query-0123"
			_, err := c.keys(t.Context(), uri, "k1")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(logs.String(), "secret-in-query") {
				t.Fatalf("the URI leaked: error %q, log %q", err, logs.String())
			}
			if !strings.Contains(logs.String(), "jwks_host="+s.srv.Listener.Addr().String()) {
				t.Fatalf("the failure was not logged with its host: %q", logs.String())
			}
			if _, err := c.keys(t.Context(), uri, "k1"); err == nil {
				t.Fatal("the second lookup succeeded")
			}
			if n := s.hits.Load(); n != 1 {
				t.Fatalf("a failed fetch was retried at once: %d fetches", n)
			}
			s.set(func(s *jwksServer) { s.body, s.block = nil, nil })
			clock.Add(jwksRefetchAfter)
			if _, err := c.keys(t.Context(), uri, "k1"); err != nil {
				t.Fatalf("after the refetch interval the fixed URI still fails: %v", err)
			}
		})
	}
}

// Only https, or http on a loopback host, is fetched; redirects are not
// followed.
func TestJWKSCache_Refused(t *testing.T) {
	target := newJWKSServer(t, "k1")
	redirect := httptest.NewServer(http.RedirectHandler(target.srv.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	c, _, _ := newTestJWKSCache(t)
	for uri, want := range map[string]string{
		"http://jwks.example.com/keys": "must use https",
		"ftp://127.0.0.1/keys":         "scheme",
		redirect.URL:                   "redirects are not followed",
	} {
		if _, err := c.keys(t.Context(), uri, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", uri, err, want)
		}
	}
	if n := target.hits.Load(); n != 0 {
		t.Fatalf("the redirect was followed (%d fetches)", n)
	}
}

// The cache holds at most its bound, forgetting the least recently used.
func TestJWKSCache_Bounded(t *testing.T) {
	s := newJWKSServer(t, "k1")
	c, clock, _ := newTestJWKSCache(t)
	c.max = 3
	get := func(path string) {
		t.Helper()
		if _, err := c.keys(t.Context(), s.srv.URL+path, "k1"); err != nil {
			t.Fatal(err)
		}
		clock.Add(time.Second)
	}
	get("/a")
	get("/b")
	get("/c")
	get("/a") // /b is now the least recently used
	get("/d")
	if len(c.entries) != 3 || c.entries[s.srv.URL+"/b"] != nil {
		t.Fatalf("entries after overflow: %d, /b kept %v", len(c.entries), c.entries[s.srv.URL+"/b"] != nil)
	}
	before := s.hits.Load()
	get("/a")
	get("/c")
	if s.hits.Load() != before {
		t.Fatal("a recently used entry was evicted")
	}
}
