package provider

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimit is a token bucket: Rate requests per second on average, bursts
// of Burst. A zero Rate takes the default; a negative Rate disables the
// limit.
type RateLimit struct {
	Rate  float64
	Burst int
}

// Default limits of the WeChat grant. They are per replica: N replicas
// behind a load balancer admit up to N times as much (documented in
// docs/config.md). WeChat's own per-user minute quota (45011) still holds
// across the cluster.
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
