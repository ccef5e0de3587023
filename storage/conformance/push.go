package conformance

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// pushTests are the contract tests of PushEventStore; RunTests includes
// them.
var pushTests = []testCase{
	{"PushEventDedup", testPushEventDedup},
	{"PushEventClaims", testPushEventClaims},
	{"PushEventExpiry", testPushEventExpiry},
}

// pushConcurrencyTests are RunConcurrencyTests' push-event cases.
var pushConcurrencyTests = []testCase{
	{"RecordPushEventOnce", testConcurrentRecordPush},
	{"ClaimPushEventOnce", testConcurrentClaimPush},
}

func pushEvent(app, key string, received time.Time) storage.PushEvent {
	return storage.PushEvent{AppID: app, Key: key, OpenID: "open-of-" + key, Data: []byte(`{"event":"SCAN","key":"` + key + `"}`),
		ReceivedAt: received, ExpiresAt: received.Add(time.Hour)}
}

func testPushEventDedup(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	e := pushEvent("wxoa", "k1", now)
	fresh, err := s.RecordPushEvent(ctx, e, now.Add(time.Minute))
	require.NoError(t, err)
	assert.True(t, fresh)
	// A retry of the same push changes nothing, even with other data.
	again := e
	again.Data = []byte(`{"other":true}`)
	fresh, err = s.RecordPushEvent(ctx, again, now)
	require.NoError(t, err)
	assert.False(t, fresh, "a retry was recorded twice")
	// The same key of another app is another event.
	fresh, err = s.RecordPushEvent(ctx, pushEvent("wxother", "k1", now), now)
	require.NoError(t, err)
	assert.True(t, fresh)
	// The first claim holds; the other app's (claimed until now) is due.
	got, err := s.ClaimPushEvents(ctx, now, now.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "wxother", got[0].AppID)
	// After the first claim lapses, the data is the first recording's.
	got, err = s.ClaimPushEvents(ctx, now.Add(2*time.Minute), now.Add(3*time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for _, g := range got {
		if g.AppID == "wxoa" {
			assert.Equal(t, e.Data, g.Data)
			assert.Equal(t, e.OpenID, g.OpenID)
			assert.True(t, g.ReceivedAt.Equal(now))
			assert.True(t, g.ExpiresAt.Equal(e.ExpiresAt))
		}
	}
}

func testPushEventClaims(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	for i, k := range []string{"c", "a", "b"} {
		_, err := s.RecordPushEvent(ctx, pushEvent("wxoa", k, now.Add(time.Duration(i)*time.Second)), now)
		require.NoError(t, err)
	}
	// Oldest first, at most limit.
	got, err := s.ClaimPushEvents(ctx, now.Add(5*time.Second), now.Add(time.Minute), 2)
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.Equal(t, []string{"c", "a"}, []string{got[0].Key, got[1].Key})
	// Claimed ones are not handed out again while the claim holds.
	got, err = s.ClaimPushEvents(ctx, now.Add(6*time.Second), now.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, "b", got[0].Key)
	// Finished events never come back; unfinished ones do after the claim.
	require.NoError(t, s.FinishPushEvent(ctx, "wxoa", "c"))
	require.NoError(t, s.FinishPushEvent(ctx, "wxoa", "nope"), "finishing an unknown event is not an error")
	got, err = s.ClaimPushEvents(ctx, now.Add(2*time.Minute), now.Add(3*time.Minute), 10)
	require.NoError(t, err)
	keys := []string{}
	for _, g := range got {
		keys = append(keys, g.Key)
	}
	assert.ElementsMatch(t, []string{"a", "b"}, keys)
	got, err = s.ClaimPushEvents(ctx, now.Add(2*time.Minute), now.Add(3*time.Minute), 0)
	require.NoError(t, err)
	assert.Empty(t, got)
}

func testPushEventExpiry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	e := pushEvent("wxoa", "old", now.Add(-2*time.Hour)) // expired an hour ago
	_, err := s.RecordPushEvent(ctx, e, now.Add(-2*time.Hour))
	require.NoError(t, err)
	live := pushEvent("wxoa", "live", now)
	_, err = s.RecordPushEvent(ctx, live, now)
	require.NoError(t, err)
	got, err := s.ClaimPushEvents(ctx, now, now.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, got, 1, "an expired event is not handed out")
	assert.Equal(t, "live", got[0].Key)
	n, err := s.DeleteExpired(ctx, now)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, int64(1))
	// Gone: the same key records afresh.
	fresh, err := s.RecordPushEvent(ctx, e, now)
	require.NoError(t, err)
	assert.True(t, fresh)
	fresh, err = s.RecordPushEvent(ctx, live, now)
	require.NoError(t, err)
	assert.False(t, fresh, "an unexpired event was deleted")
}

func testConcurrentRecordPush(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	var fresh atomic.Int32
	race(16, func(int) {
		ok, err := s.RecordPushEvent(ctx, pushEvent("wxoa", "same", now), now.Add(time.Minute))
		if assert.NoError(t, err) && ok {
			fresh.Add(1)
		}
	})
	assert.Equal(t, int32(1), fresh.Load(), "one push recorded as new by several replicas")
}

func testConcurrentClaimPush(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	const events = 20
	for i := range events {
		_, err := s.RecordPushEvent(ctx, pushEvent("wxoa", fmt.Sprintf("e%02d", i), now), now)
		require.NoError(t, err)
	}
	var seen [events]atomic.Int32
	race(8, func(int) {
		got, err := s.ClaimPushEvents(ctx, now.Add(time.Second), now.Add(time.Minute), events)
		if !assert.NoError(t, err) {
			return
		}
		for _, g := range got {
			var i int
			fmt.Sscanf(g.Key, "e%02d", &i)
			seen[i].Add(1)
		}
	})
	for i := range seen {
		assert.Equal(t, int32(1), seen[i].Load(), "event %d claimed %d times", i, seen[i].Load())
	}
}
