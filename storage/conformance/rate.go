package conformance

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// testTakeRate checks RateStore's arithmetic: a limit starts full, admits
// bursts of burst, refills at rate, takes all n or none, and is forgotten
// by DeleteExpired once it has refilled.
func testTakeRate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	t0 := time.Unix(1_800_000_000, 0)
	take := func(name string, n int, at time.Duration) bool {
		t.Helper()
		ok, err := s.TakeRate(ctx, name, n, 2, 4, t0.Add(at)) // 2/s, bursts of 4
		require.NoError(t, err)
		return ok
	}
	for i := range 4 {
		assert.True(t, take("a", 1, 0), "request %d of the burst", i+1)
	}
	assert.False(t, take("a", 1, 0), "past the burst")
	assert.True(t, take("b", 1, 0), "limits are independent")
	assert.False(t, take("a", 1, 400*time.Millisecond), "before one interval (500 ms) has passed")
	assert.True(t, take("a", 1, 500*time.Millisecond), "after one interval")
	assert.False(t, take("a", 1, 500*time.Millisecond))

	// All or none: at 2.5 s the limit holds 4 again; 3 are taken, a request
	// for 2 more fails without taking the 1 left.
	assert.True(t, take("a", 3, 2500*time.Millisecond))
	assert.False(t, take("a", 2, 2500*time.Millisecond))
	assert.True(t, take("a", 1, 2500*time.Millisecond))
	assert.False(t, take("c", 5, 0), "more than a burst is never admitted")
	ok, err := s.TakeRate(ctx, "c", 1, 0, 4, t0)
	require.NoError(t, err)
	assert.False(t, ok, "a zero rate admits nothing")

	// Refilled limits go; nothing else.
	_, err = s.DeleteExpired(ctx, t0.Add(time.Hour))
	require.NoError(t, err)
	for i := range 4 {
		assert.True(t, take("a", 1, time.Hour), "after DeleteExpired, request %d", i+1)
	}
}

// testConcurrentTakeRate races takers of one limit: exactly a burst is
// admitted.
func testConcurrentTakeRate(t *testing.T, s storage.Storage) {
	now := time.Unix(1_800_000_000, 0)
	var admitted atomic.Int32
	race(parallelism, func(int) {
		ok, err := s.TakeRate(t.Context(), "shared", 1, 0.001, 5, now)
		if assert.NoError(t, err) && ok {
			admitted.Add(1)
		}
	})
	assert.Equal(t, int32(5), admitted.Load())
}
