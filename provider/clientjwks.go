package provider

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// Limits of the client key-set cache (jwksCache). They are not settings:
// the cache holds public data and only spares clients' servers and our
// requests the round trip.
const (
	// jwksCacheEntries bounds how many jwks_uris are remembered; the
	// least recently used is forgotten first. With maxFetchedBytes per
	// set, that bounds the cache at a few tens of megabytes.
	jwksCacheEntries = 512
	// jwksMinTTL and jwksMaxTTL bound how long a fetched set is used,
	// whatever its Cache-Control max-age says; jwksDefaultTTL applies when
	// it says nothing.
	jwksMinTTL     = time.Minute
	jwksMaxTTL     = time.Hour
	jwksDefaultTTL = 10 * time.Minute
	// jwksRefetchAfter is the least time between two fetches of one URI
	// that the cache's content does not need: a kid the cached set does
	// not hold (the client rotated keys), or another try after a failed
	// fetch. It keeps a stream of requests naming unknown kids from making
	// the provider hammer a client's server.
	jwksRefetchAfter = 15 * time.Second
	// jwksFetchTimeout bounds one fetch, whoever waits for it.
	jwksFetchTimeout = 5 * time.Second
)

// jwksCache caches clients' public key sets fetched from their jwks_uri,
// for every verifier of this process (request objects today). It is per
// process on purpose: key sets are public, so replicas need not agree on
// them, and each replica fetching a URI at most once per TTL is cheap.
//
// A set is fetched when it is not cached or has expired (Cache-Control
// max-age, kept between jwksMinTTL and jwksMaxTTL), and again when a
// verifier asks for a kid the set lacks, at most once per jwksRefetchAfter.
// Concurrent misses of one URI share one fetch. A failed fetch is
// remembered for jwksRefetchAfter, so a broken or hostile URI is not
// fetched again on every request. Fetches use the provider's outbound
// client (no redirects followed) with a time limit and maxFetchedBytes,
// and only URIs that checkServerURI accepts (https; http on loopback hosts
// or in dev).
type jwksCache struct {
	// fetch GETs a URI (Provider.fetch); never nil.
	fetch   func(ctx context.Context, uri, accept string) ([]byte, http.Header, error)
	now     func() time.Time
	log     *slog.Logger
	timeout time.Duration
	max     int

	group singleflight.Group

	mu      sync.Mutex
	entries map[string]*jwksEntry // guarded by mu; at most max entries
}

// jwksEntry is what the cache knows of one URI. Exactly one of set and err
// is set.
type jwksEntry struct {
	set *jose.JSONWebKeySet
	// err is why the last fetch failed, while no fresh set is known.
	err error
	// fetched is when the last fetch (or attempt) ended.
	fetched time.Time
	// expires is when set stops being used.
	expires time.Time
	// used is when a verifier last asked; the least recently used entry
	// is evicted first.
	used time.Time
}

func newJWKSCache(fetch func(ctx context.Context, uri, accept string) ([]byte, http.Header, error), now func() time.Time, log *slog.Logger) *jwksCache {
	return &jwksCache{fetch: fetch, now: now, log: log.With("component", "client_jwks"),
		timeout: jwksFetchTimeout, max: jwksCacheEntries, entries: map[string]*jwksEntry{}}
}

// errJWKSUnavailable is the cached result of a recent failed fetch.
var errJWKSUnavailable = errors.New("the key set could not be fetched recently; it is not fetched again yet")

// keys returns the key set served at uri for verifying a signature whose
// header names kid ("" when it names none).
func (c *jwksCache) keys(ctx context.Context, uri, kid string) (*jose.JSONWebKeySet, error) {
	now := c.now()
	c.mu.Lock()
	e := c.entries[uri]
	if e != nil {
		e.used = now
		recent := now.Before(e.fetched.Add(jwksRefetchAfter))
		switch {
		case e.err != nil && recent:
			c.mu.Unlock()
			return nil, errJWKSUnavailable
		case e.set != nil && now.Before(e.expires) && (kid == "" || hasKID(e.set, kid) || recent):
			set := e.set
			c.mu.Unlock()
			return set, nil
		}
	}
	c.mu.Unlock()

	ch := c.group.DoChan(uri, func() (any, error) { return c.refresh(ctx, uri) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*jose.JSONWebKeySet), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// refresh fetches uri once (inside the single flight) and records the
// outcome. When the fetch fails but a set that has not expired is known
// (a refetch for an unknown kid), that set is kept and returned.
func (c *jwksCache) refresh(ctx context.Context, uri string) (*jose.JSONWebKeySet, error) {
	// The fetch serves every waiter, so the first one's cancellation must
	// not end it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	b, header, err := c.fetch(ctx, uri, "application/jwk-set+json, application/json")
	var set *jose.JSONWebKeySet
	if err == nil {
		set, err = parseClientJWKS(b)
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.entries[uri]
	if err != nil {
		c.log.WarnContext(ctx, "client jwks_uri fetch failed", "jwks_host", uriHost(uri), "error", err)
		if old != nil && old.set != nil && now.Before(old.expires) {
			old.fetched = now
			return old.set, nil
		}
		c.put(uri, &jwksEntry{err: err, fetched: now, used: now})
		return nil, err
	}
	c.put(uri, &jwksEntry{set: set, fetched: now, expires: now.Add(jwksTTL(header)), used: now})
	return set, nil
}

// put stores e for uri, evicting the least recently used entry when the
// cache is full. c.mu is held.
func (c *jwksCache) put(uri string, e *jwksEntry) {
	if _, ok := c.entries[uri]; !ok && len(c.entries) >= c.max {
		var lru string
		var oldest time.Time
		for u, x := range c.entries {
			if lru == "" || x.used.Before(oldest) {
				lru, oldest = u, x.used
			}
		}
		delete(c.entries, lru)
	}
	c.entries[uri] = e
}

// jwksTTL is how long a set fetched with header is used: its Cache-Control
// max-age less its Age (RFC 9111 §4.2), no-store or no-cache as the least,
// jwksDefaultTTL without either, always within [jwksMinTTL, jwksMaxTTL].
func jwksTTL(header http.Header) time.Duration {
	ttl := jwksDefaultTTL
	for _, d := range strings.Split(header.Get("Cache-Control"), ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return jwksMinTTL
		case "max-age":
			n, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64)
			if err != nil || n < 0 {
				continue
			}
			age, _ := strconv.ParseInt(header.Get("Age"), 10, 64)
			ttl = time.Duration(max(min(n, int64(jwksMaxTTL/time.Second))-max(age, 0), 0)) * time.Second
		}
	}
	return min(max(ttl, jwksMinTTL), jwksMaxTTL)
}

// hasKID reports whether set holds a key named kid.
func hasKID(set *jose.JSONWebKeySet, kid string) bool {
	return len(set.Key(kid)) > 0
}

// uriHost is what logs say of a client's URI: its host, never its path or
// query, which may carry a credential of the client's.
func uriHost(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(invalid)"
	}
	return u.Host
}
