package provider

import (
	"context"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/wxoidc/wxoidc/storage"
)

// RateLimit is a token bucket: Rate requests per second on average, bursts
// of Burst. A zero Rate takes the default; a negative Rate disables the
// limit.
type RateLimit struct {
	Rate  float64
	Burst int
}

// Default limits of the WeChat grant. The per-client limit holds across
// every replica on one database (clientQuota); the per-IP limit is kept by
// each replica, so N replicas behind a load balancer admit up to N times as
// much from one address (documented in docs/config.md). WeChat's own
// per-user minute quota (45011) holds across the cluster in any case.
var (
	DefaultGrantLimitPerClient = RateLimit{Rate: 1000, Burst: 2000}
	DefaultGrantLimitPerIP     = RateLimit{Rate: 20, Burst: 40}
)

// maxBuckets bounds the limiter's memory in normal operation.
const maxBuckets = 100_000

// grantLimits holds one token bucket per client and per IP address.
type grantLimits struct {
	perClient, perIP RateLimit
	mu               sync.Mutex
	buckets          map[string]*bucket // guarded by mu; key "c:"+client or "i:"+ip
	lastSweep        time.Time          // guarded by mu
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newGrantLimits(perClient, perIP RateLimit) *grantLimits {
	if perClient.Rate == 0 {
		perClient = DefaultGrantLimitPerClient
	}
	if perIP.Rate == 0 {
		perIP = DefaultGrantLimitPerIP
	}
	return &grantLimits{perClient: perClient, perIP: perIP, buckets: map[string]*bucket{}}
}

// allow reports whether a grant request of clientID from ip may proceed,
// and if not, after how many seconds to retry.
func (g *grantLimits) allow(clientID, ip string, now time.Time) (bool, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	// Forget idle buckets every minute, and sooner when someone sprays
	// made-up client ids to grow the map.
	if now.Sub(g.lastSweep) > time.Minute || len(g.buckets) > maxBuckets {
		idle := 10 * time.Minute
		if len(g.buckets) > maxBuckets {
			idle = time.Minute
		}
		for k, b := range g.buckets {
			if now.Sub(b.seen) > idle {
				delete(g.buckets, k)
			}
		}
		g.lastSweep = now
	}
	// The address first, so one source cannot create client buckets
	// faster than its own limit.
	for _, c := range []struct {
		key string
		lim RateLimit
	}{{"i:" + ip, g.perIP}, {"c:" + clientID, g.perClient}} {
		if c.lim.Rate < 0 {
			continue
		}
		b := g.buckets[c.key]
		if b == nil {
			b = &bucket{l: rate.NewLimiter(rate.Limit(c.lim.Rate), max(c.lim.Burst, 1))}
			g.buckets[c.key] = b
		}
		b.seen = now
		if r := b.l.ReserveN(now, 1); !r.OK() || r.DelayFrom(now) > 0 {
			wait := r.DelayFrom(now)
			r.CancelAt(now)
			return false, int(math.Ceil(max(wait, time.Second).Seconds()))
		}
	}
	return true, 0
}

// clientIP is the address a request came from (the peer; a trusted proxy's
// forwarded address is the HTTP layer's business).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func retryAfterHeader(w http.ResponseWriter, seconds int) {
	w.Header().Set("Retry-After", strconv.Itoa(seconds))
}

// clientQuota keeps the per-client limit of the WeChat grant across
// replicas. It takes requests from the limit shared in storage
// (storage.RateStore) a chunk at a time, 20 ms worth at the full rate, and
// spends them locally, so a replica asks the database about once a chunk;
// one request per client at a time fetches, the others wait for it. A
// replica can only spend requests it has taken from the shared limit, so
// the cluster never admits more than the limit; it may admit up to a chunk
// per replica less.
type clientQuota struct {
	store storage.Storage
	lim   RateLimit
	chunk int

	mu       sync.Mutex
	reserves map[string]*reserve // guarded by mu; registered clients only
}

// reserve is what a replica holds of one client's shared limit.
type reserve struct {
	mu sync.Mutex // held while fetching
	n  int        // requests taken from the shared limit, not yet spent
}

// newClientQuota returns the shared form of lim, or nil if lim is off.
func newClientQuota(store storage.Storage, lim RateLimit) *clientQuota {
	if lim.Rate == 0 {
		lim = DefaultGrantLimitPerClient
	}
	if lim.Rate < 0 {
		return nil
	}
	lim.Burst = max(lim.Burst, 1)
	chunk := min(max(int(math.Ceil(lim.Rate/50)), 1), lim.Burst)
	return &clientQuota{store: store, lim: lim, chunk: chunk, reserves: map[string]*reserve{}}
}

// allow reports whether a grant request of clientID may proceed, and if
// not, after how many seconds to retry. Only registered clients have a
// shared limit (made-up ids fail client authentication anyway and must not
// create rows). If the database cannot answer, the request proceeds: the
// per-replica limits still apply, and the grant itself then meets the
// outage and says so.
func (q *clientQuota) allow(ctx context.Context, clientID string, now time.Time) (bool, int) {
	if q == nil {
		return true, 0
	}
	q.mu.Lock()
	r := q.reserves[clientID]
	q.mu.Unlock()
	if r == nil {
		if _, err := q.store.GetClient(ctx, clientID); err != nil {
			return true, 0
		}
		q.mu.Lock()
		if r = q.reserves[clientID]; r == nil {
			r = &reserve{}
			q.reserves[clientID] = r
		}
		q.mu.Unlock()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n > 0 {
		r.n--
		return true, 0
	}
	name := "wechat-grant/client/" + clientID
	sizes := []int{q.chunk}
	if q.chunk > 1 {
		sizes = append(sizes, 1)
	}
	for _, n := range sizes {
		ok, err := q.store.TakeRate(ctx, name, n, q.lim.Rate, q.lim.Burst, now)
		if err != nil {
			return true, 0
		}
		if ok {
			r.n = n - 1
			return true, 0
		}
	}
	return false, int(math.Ceil(max(1/q.lim.Rate, 1)))
}
