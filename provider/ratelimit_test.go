package provider

import (
	"fmt"
	"testing"
	"time"
)

func TestGrantLimits(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := newGrantLimits(RateLimit{Rate: 100, Burst: 100}, RateLimit{Rate: 1, Burst: 2})
	for i := range 2 {
		if ok, _ := g.allow("mini", "10.0.0.1", now); !ok {
			t.Fatalf("request %d within the burst was refused", i)
		}
	}
	ok, wait := g.allow("mini", "10.0.0.1", now)
	if ok || wait < 1 {
		t.Fatalf("third request in a burst of 2: ok=%v retry-after=%d", ok, wait)
	}
	if ok, _ := g.allow("mini", "10.0.0.2", now); !ok {
		t.Fatal("another address shares the first one's bucket")
	}
	if ok, _ := g.allow("mini", "10.0.0.1", now.Add(time.Second)); !ok {
		t.Fatal("the bucket did not refill after a second")
	}

	// Per client, across addresses.
	g = newGrantLimits(RateLimit{Rate: 1, Burst: 1}, RateLimit{Rate: -1})
	g.allow("mini", "10.0.0.1", now)
	if ok, _ := g.allow("mini", "10.0.0.2", now); ok {
		t.Fatal("the per-client limit did not hold across addresses")
	}

	// Sprayed client ids do not grow the map without bound.
	g = newGrantLimits(RateLimit{Rate: 10, Burst: 10}, RateLimit{Rate: -1})
	for i := range maxBuckets + 10 {
		g.allow(fmt.Sprint("spray", i), "10.0.0.9", now.Add(-2*time.Minute))
	}
	g.allow("mini", "10.0.0.9", now)
	if n := len(g.buckets); n > maxBuckets/2 {
		t.Fatalf("%d buckets kept after a spray, want the idle ones swept", n)
	}
}
