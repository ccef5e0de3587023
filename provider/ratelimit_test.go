package provider

import (
	"fmt"
	"testing"
	"time"
)

func TestGrantLimits(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := newGrantLimits(RateLimit{Rate: 100, Burst: 100}, RateLimit{Rate: 1, Burst: 2}, 0)
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
	g = newGrantLimits(RateLimit{Rate: 1, Burst: 1}, RateLimit{Rate: -1}, 0)
	g.allow("mini", "10.0.0.1", now)
	if ok, _ := g.allow("mini", "10.0.0.2", now); ok {
		t.Fatal("the per-client limit did not hold across addresses")
	}

	// Sprayed client ids do not grow the map without bound.
	g = newGrantLimits(RateLimit{Rate: 10, Burst: 10}, RateLimit{Rate: -1}, 0)
	for i := range maxBuckets + 10 {
		g.allow(fmt.Sprint("spray", i), "10.0.0.9", now.Add(-2*time.Minute))
	}
	g.allow("mini", "10.0.0.9", now)
	if n := len(g.set.m); n > maxBuckets/2 {
		t.Fatalf("%d buckets kept after a spray, want the idle ones swept", n)
	}
}

// TestGrantLimits_IPv6ByNetwork: the addresses of one /64 share a bucket
// (a host holds the whole /64); another /64 has its own; the prefix is
// configurable.
func TestGrantLimits_IPv6ByNetwork(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	g := newGrantLimits(RateLimit{Rate: -1}, RateLimit{Rate: 1, Burst: 2}, 0)
	admitted := 0
	for i := range 120 {
		if ok, _ := g.allow("mini", fmt.Sprintf("2001:db8:1:2::%x", i+1), now); ok {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("120 addresses of one /64 got %d requests through a burst of 2", admitted)
	}
	if ok, _ := g.allow("mini", "2001:db8:1:3::1", now); !ok {
		t.Fatal("another /64 shares the first one's bucket")
	}
	g = newGrantLimits(RateLimit{Rate: -1}, RateLimit{Rate: 1, Burst: 1}, 48)
	g.allow("mini", "2001:db8:1:2::1", now)
	if ok, _ := g.allow("mini", "2001:db8:1:ffff::1", now); ok {
		t.Fatal("with prefix 48, two /64s of one /48 had separate buckets")
	}
}

func TestAddrKey(t *testing.T) {
	for _, c := range []struct {
		ip     string
		prefix int
		want   string
	}{
		{"192.0.2.1", 0, "192.0.2.1"},
		{"::ffff:192.0.2.1", 0, "192.0.2.1"},
		{"2001:db8::1", 0, "2001:db8::/64"},
		{"2001:db8::1%eth0", 0, "2001:db8::/64"},
		{"2001:db8:aaaa:bbbb:cccc::1", 56, "2001:db8:aaaa:bb00::/56"},
		{"2001:db8::1", 128, "2001:db8::1/128"},
		{"not an ip", 0, "not an ip"},
	} {
		if got := AddrKey(c.ip, c.prefix); got != c.want {
			t.Errorf("AddrKey(%q, %d) = %q, want %q", c.ip, c.prefix, got, c.want)
		}
	}
}
