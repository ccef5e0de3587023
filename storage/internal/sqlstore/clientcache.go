package sqlstore

import (
	"bytes"
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

// decodedClients remembers, per client ID, the columns of the last client
// row decoded and the client they decoded to. A token row is read joined
// with its client's row (load), so every refresh, introspection and
// revocation brought the client's metadata along and decoded its JSON again
// (about 49,000 instructions a refresh); a row whose columns are all the
// same as the remembered ones gets a copy of the remembered client
// instead. Comparing every column (not only the version) makes a hit the
// same client that decoding would give, whoever changed the row and how.
type decodedClients struct {
	mu sync.Mutex
	m  map[string]decodedClient
}

type decodedClient struct {
	row clientRow
	c   storage.Client
}

// client returns r decoded, from the memo when r's columns are the ones
// decoded last time for r.id.
func (dc *decodedClients) client(r *clientRow) (storage.Client, error) {
	dc.mu.Lock()
	e, ok := dc.m[r.id]
	dc.mu.Unlock()
	if ok && e.row.equal(r) {
		return e.c.Clone(), nil
	}
	c, err := r.client()
	if err != nil {
		return c, err
	}
	kept := decodedClient{row: clientRow{id: r.id, secretHash: bytes.Clone(r.secretHash), meta: bytes.Clone(r.meta),
		version: r.version, created: r.created, updated: r.updated}, c: c.Clone()}
	dc.mu.Lock()
	if dc.m == nil || len(dc.m) >= clientCacheMax {
		dc.m = make(map[string]decodedClient)
	}
	dc.m[r.id] = kept
	dc.mu.Unlock()
	return c, nil
}

// equal reports whether r and o hold the same columns.
func (r *clientRow) equal(o *clientRow) bool {
	return r.id == o.id && r.version == o.version && r.created == o.created && r.updated == o.updated &&
		bytes.Equal(r.secretHash, o.secretHash) && bytes.Equal(r.meta, o.meta)
}
