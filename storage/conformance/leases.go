package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

func testLeases(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	acquire := func(name, holder string, ttl time.Duration) bool {
		t.Helper()
		ok, err := s.AcquireLease(ctx, name, holder, ttl)
		require.NoError(t, err)
		return ok
	}
	assert.True(t, acquire("janitor", "a", time.Minute))
	assert.False(t, acquire("janitor", "b", time.Minute), "the lease is exclusive")
	assert.True(t, acquire("janitor", "a", time.Minute), "the holder may extend")
	assert.True(t, acquire("rotator", "b", time.Minute), "leases are independent")

	require.NoError(t, s.ReleaseLease(ctx, "janitor", "b"), "releasing a lease held by another is a no-op")
	assert.False(t, acquire("janitor", "b", time.Minute))
	require.NoError(t, s.ReleaseLease(ctx, "janitor", "a"))
	assert.True(t, acquire("janitor", "b", time.Minute), "a released lease is free")
	require.NoError(t, s.ReleaseLease(ctx, "unknown", "a"))

	// An expired lease is free.
	assert.True(t, acquire("short", "a", 10*time.Millisecond))
	time.Sleep(30 * time.Millisecond)
	assert.True(t, acquire("short", "b", time.Minute), "an expired lease is free")
	assert.False(t, acquire("short", "a", time.Minute))
}
