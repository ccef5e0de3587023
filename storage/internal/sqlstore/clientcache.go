package sqlstore

import (
	"sync"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// clientTTL is how long GetClient reuses a client it has read. fosite looks
// the client up on every token, introspection and revocation request; the
// cache saves that round trip. A change made through another Store (another
// replica) reaches this one within clientTTL; this Store's own changes drop
// the entry at once.
const clientTTL = time.Second

// clientCacheMax bounds the cache; when full it starts over.
const clientCacheMax = 4096

// clientCache holds recently read clients by ID. Not-found answers are not
// cached, so a new client works at once everywhere.
type clientCache struct {
	mu  sync.Mutex
	gen uint64 // bumped by every drop, so a read that raced a change is not kept
	m   map[string]cachedClient
}

type cachedClient struct {
	c     storage.Client
	until time.Time
}

// get returns a copy of the cached client id, if it is fresh, and the
// generation to pass to put after reading it from the database.
func (cc *clientCache) get(id string, now time.Time) (storage.Client, bool, uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	e, ok := cc.m[id]
	if !ok || !now.Before(e.until) {
		return storage.Client{}, false, cc.gen
	}
	return e.c.Clone(), true, cc.gen
}

// put caches c, read at now, unless the cache was dropped since gen.
func (cc *clientCache) put(c storage.Client, now time.Time, gen uint64) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if gen != cc.gen {
		return
	}
	if cc.m == nil || len(cc.m) >= clientCacheMax {
		cc.m = make(map[string]cachedClient)
	}
	cc.m[c.ID] = cachedClient{c: c.Clone(), until: now.Add(clientTTL)}
}

// drop forgets client id (after this Store changed or deleted it).
func (cc *clientCache) drop(id string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	delete(cc.m, id)
}
