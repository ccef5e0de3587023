package provider

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/netip"
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

// Default per-IP limit of the browser sign-in endpoints (/oauth2/authorize,
// /oauth2/par and the login step's /login), per replica: generous for
// people behind one NAT, tight enough that one source cannot fill the
// database with pending requests.
var DefaultAuthorizeLimitPerIP = RateLimit{Rate: 10, Burst: 50}

// DefaultIPv6Prefix is the network size by which IPv6 clients share a
// per-IP bucket: a host usually holds a whole /64, so per-address buckets
// would give it 2^64 of them.
const DefaultIPv6Prefix = 64

// maxBuckets bounds a limiter's memory in normal operation.
const maxBuckets = 100_000

// buckets holds token buckets by key, forgetting idle ones.
type buckets struct {
	mu        sync.Mutex
	m         map[string]*bucket // guarded by mu
	lastSweep time.Time          // guarded by mu
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

// keyed is one bucket to take from: its key and its limit.
type keyed struct {
	key string
	lim RateLimit
}

// take takes one request from every bucket in order, or from none; if one
// refuses, it says after how many seconds to retry. Limits with a negative
// Rate are skipped.
func (b *buckets) take(now time.Time, ks ...keyed) (bool, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*bucket{}
	}
	// Forget idle buckets every minute, and sooner when someone sprays
	// keys (made-up client ids, addresses) to grow the map.
	if now.Sub(b.lastSweep) > time.Minute || len(b.m) > maxBuckets {
		idle := 10 * time.Minute
		if len(b.m) > maxBuckets {
			idle = time.Minute
		}
		for k, bk := range b.m {
			if now.Sub(bk.seen) > idle {
				delete(b.m, k)
			}
		}
		b.lastSweep = now
	}
	var taken []*rate.Reservation
	for _, k := range ks {
		if k.lim.Rate < 0 {
			continue
		}
		bk := b.m[k.key]
		if bk == nil {
			bk = &bucket{l: rate.NewLimiter(rate.Limit(k.lim.Rate), max(k.lim.Burst, 1))}
			b.m[k.key] = bk
		}
		bk.seen = now
		r := bk.l.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			wait := r.DelayFrom(now)
			r.CancelAt(now)
			for _, t := range taken {
				t.CancelAt(now)
			}
			return false, int(math.Ceil(max(wait, time.Second).Seconds()))
		}
		taken = append(taken, r)
	}
	return true, 0
}

// grantLimits holds one token bucket per client and per IP address.
type grantLimits struct {
	perClient, perIP RateLimit
	ipv6Prefix       int
	set              buckets
}

func newGrantLimits(perClient, perIP RateLimit, ipv6Prefix int) *grantLimits {
	if perClient.Rate == 0 {
		perClient = DefaultGrantLimitPerClient
	}
	if perIP.Rate == 0 {
		perIP = DefaultGrantLimitPerIP
	}
	return &grantLimits{perClient: perClient, perIP: perIP, ipv6Prefix: ipv6Prefix}
}

// allow reports whether a grant request of clientID from address ip may
// proceed, and if not, after how many seconds to retry. The address goes
// first, so one source cannot create client buckets faster than its own
// limit.
func (g *grantLimits) allow(clientID, ip string, now time.Time) (bool, int) {
	return g.set.take(now, keyed{"i:" + AddrKey(ip, g.ipv6Prefix), g.perIP}, keyed{"c:" + clientID, g.perClient})
}

// IPLimiter limits requests per client address (IPv6 clients per network
// of a configurable size), on this replica: a token bucket per address.
// The zero value is not usable; build it with NewIPLimiter. A nil
// *IPLimiter admits everything.
type IPLimiter struct {
	lim        RateLimit
	ipv6Prefix int
	set        buckets
}

// NewIPLimiter returns a limiter of lim per address; IPv6 addresses share a
// bucket per /ipv6Prefix network (0 takes DefaultIPv6Prefix). It returns
// nil (no limit) when lim.Rate is negative; a zero lim.Rate takes def.
func NewIPLimiter(lim, def RateLimit, ipv6Prefix int) *IPLimiter {
	if lim.Rate == 0 {
		lim = def
	}
	if lim.Rate < 0 {
		return nil
	}
	return &IPLimiter{lim: lim, ipv6Prefix: ipv6Prefix}
}

// Allow reports whether a request from r's address may proceed at now,
// and if not, after how many seconds to retry.
func (l *IPLimiter) Allow(r *http.Request, now time.Time) (bool, int) {
	if l == nil {
		return true, 0
	}
	return l.set.take(now, keyed{AddrKey(clientIP(r), l.ipv6Prefix), l.lim})
}

// AddrKey is the key under which the address ip is rate-limited: an IPv4
// address (or an IPv4-mapped IPv6 one) as itself, an IPv6 address as its
// network of prefix bits (0 takes DefaultIPv6Prefix), anything else as is.
func AddrKey(ip string, prefix int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	if prefix <= 0 || prefix > 128 {
		prefix = DefaultIPv6Prefix
	}
	p, err := a.Prefix(prefix)
	if err != nil {
		return a.String()
	}
	return p.String()
}

// RequestAddrKey is AddrKey of the address r comes from.
func RequestAddrKey(r *http.Request, prefix int) string { return AddrKey(clientIP(r), prefix) }

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
