package conformance

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// deviceTests are the contract tests of DeviceAuthStore; RunTests includes
// them.
var deviceTests = []testCase{
	{"DeviceAuthLifecycle", testDeviceAuthLifecycle},
	{"DeviceAuthPolls", testDeviceAuthPolls},
	{"DeviceAuthDeny", testDeviceAuthDeny},
	{"DeviceAuthExpiry", testDeviceAuthExpiry},
	{"DeviceAuthSeen", testDeviceAuthSeen},
}

// deviceConcurrencyTests are RunConcurrencyTests' device cases.
var deviceConcurrencyTests = []testCase{
	{"RedeemDeviceAuthOnce", testConcurrentRedeemDevice},
	{"DecideDeviceAuthOnce", testConcurrentDecideDevice},
}

func newDevice(code, user string, ttl time.Duration) storage.DeviceAuth {
	now := ms(0)
	return storage.DeviceAuth{
		DeviceCode: code, UserCode: user, Kind: "device", ClientID: "tv",
		Scopes: []string{"openid", "profile"}, Data: []byte(`{"x":1}`),
		CreatedAt: now, ExpiresAt: now.Add(ttl), Interval: 5 * time.Second,
	}
}

func testDeviceAuthLifecycle(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	d := newDevice("device-code-1", "BCDFGHJK", 10*time.Minute)
	require.NoError(t, s.CreateDeviceAuth(ctx, d))
	assert.ErrorIs(t, s.CreateDeviceAuth(ctx, d), storage.ErrAlreadyExists)
	other := newDevice("device-code-2", "BCDFGHJK", time.Minute)
	assert.ErrorIs(t, s.CreateDeviceAuth(ctx, other), storage.ErrAlreadyExists, "user codes are unique")

	got, err := s.DeviceAuthByUserCode(ctx, "BCDFGHJK")
	require.NoError(t, err)
	assert.Empty(t, got.DeviceCode, "the device code is never returned")
	assert.Equal(t, storage.DevicePending, got.Status)
	assert.Equal(t, d.Scopes, got.Scopes)
	assert.Equal(t, d.Data, got.Data)
	assert.Equal(t, "tv", got.ClientID)
	assert.Equal(t, "device", got.Kind)
	assert.True(t, d.ExpiresAt.Equal(got.ExpiresAt))
	assert.Equal(t, 5*time.Second, got.Interval)
	assert.True(t, got.PolledAt.IsZero())
	assert.True(t, got.SeenAt.IsZero(), "not tracked unless given")
	byCode, err := s.DeviceAuth(ctx, "device-code-1")
	require.NoError(t, err)
	assert.Equal(t, got, byCode)
	_, err = s.DeviceAuthByUserCode(ctx, "ZZZZZZZZ")
	requireNotFound(t, err)
	_, err = s.DeviceAuth(ctx, "unknown")
	requireNotFound(t, err)

	// Another client's poll, and an unknown code, change nothing.
	_, _, err = s.PollDeviceAuth(ctx, "device-code-1", "other-client", time.Now())
	requireNotFound(t, err)
	_, _, err = s.PollDeviceAuth(ctx, "unknown", "tv", time.Now())
	requireNotFound(t, err)

	auth := ms(-time.Minute)
	dec, err := s.DecideDeviceAuth(ctx, "BCDFGHJK", storage.DeviceDecision{Approve: true, Subject: "alice", AuthTime: auth, AMR: []string{"wechat", "miniprogram"}, Now: time.Now()})
	require.NoError(t, err)
	assert.Equal(t, storage.DeviceApproved, dec.Status)
	assert.Equal(t, "alice", dec.Subject)
	// A second decision loses, and says why.
	again, err := s.DecideDeviceAuth(ctx, "BCDFGHJK", storage.DeviceDecision{Approve: false, Now: time.Now()})
	assert.ErrorIs(t, err, storage.ErrConflict)
	assert.Equal(t, storage.DeviceApproved, again.Status)
	_, err = s.DecideDeviceAuth(ctx, "ZZZZZZZZ", storage.DeviceDecision{Approve: true, Subject: "x", Now: time.Now()})
	requireNotFound(t, err)

	p, out, err := s.PollDeviceAuth(ctx, "device-code-1", "tv", time.Now())
	require.NoError(t, err)
	assert.Equal(t, storage.PollRedeemed, out)
	assert.Equal(t, storage.DeviceRedeemed, p.Status)
	assert.Equal(t, "alice", p.Subject)
	assert.True(t, auth.Equal(p.AuthTime))
	assert.Equal(t, []string{"wechat", "miniprogram"}, p.AMR)
	assert.Equal(t, d.Scopes, p.Scopes)
	_, out, err = s.PollDeviceAuth(ctx, "device-code-1", "tv", time.Now().Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, storage.PollUsed, out, "redeemed once")
}

func testDeviceAuthPolls(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	require.NoError(t, s.CreateDeviceAuth(ctx, newDevice("dc-poll", "CCCCDDDD", 10*time.Minute)))
	t0 := time.Now()
	poll := func(at time.Time) (storage.DeviceAuth, storage.PollOutcome) {
		t.Helper()
		d, out, err := s.PollDeviceAuth(ctx, "dc-poll", "tv", at)
		require.NoError(t, err)
		return d, out
	}
	d, out := poll(t0)
	assert.Equal(t, storage.PollPending, out, "the first poll is never too early")
	assert.WithinDuration(t, t0, d.PolledAt, time.Millisecond)
	_, out = poll(t0.Add(5 * time.Second))
	assert.Equal(t, storage.PollPending, out, "exactly at the interval")
	d, out = poll(t0.Add(7 * time.Second))
	assert.Equal(t, storage.PollSlowDown, out)
	assert.Equal(t, 10*time.Second, d.Interval, "slow_down adds 5 s")
	// The slack forgives a little.
	_, out = poll(t0.Add(7*time.Second + 10*time.Second - storage.DevicePollSlack/2))
	assert.Equal(t, storage.PollPending, out)
	d, out = poll(t0.Add(20 * time.Second))
	assert.Equal(t, storage.PollSlowDown, out)
	assert.Equal(t, 15*time.Second, d.Interval, "and keeps growing")
	assert.Equal(t, storage.DevicePending, d.Status)
}

func testDeviceAuthDeny(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	require.NoError(t, s.CreateDeviceAuth(ctx, newDevice("dc-deny", "FFFFGGGG", 10*time.Minute)))
	d, err := s.DecideDeviceAuth(ctx, "FFFFGGGG", storage.DeviceDecision{Approve: false, Subject: "ignored", Reason: "no_account", Now: time.Now()})
	require.NoError(t, err)
	assert.Equal(t, storage.DeviceDenied, d.Status)
	assert.Empty(t, d.Subject)
	assert.Equal(t, "no_account", d.Reason, "a denial keeps its reason")
	d, err = s.DeviceAuth(ctx, "dc-deny")
	require.NoError(t, err)
	assert.Equal(t, "no_account", d.Reason)
	_, err = s.DecideDeviceAuth(ctx, "FFFFGGGG", storage.DeviceDecision{Approve: true, Subject: "alice", Now: time.Now()})
	assert.ErrorIs(t, err, storage.ErrConflict, "no approval after a denial")
	_, out, err := s.PollDeviceAuth(ctx, "dc-deny", "tv", time.Now())
	require.NoError(t, err)
	assert.Equal(t, storage.PollDenied, out)
	// An approval has no reason, whatever the decision said.
	require.NoError(t, s.CreateDeviceAuth(ctx, newDevice("dc-ok", "MMMMNNNN", 10*time.Minute)))
	d, err = s.DecideDeviceAuth(ctx, "MMMMNNNN", storage.DeviceDecision{Approve: true, Subject: "alice", Reason: "ignored", Now: time.Now()})
	require.NoError(t, err)
	assert.Empty(t, d.Reason)
}

func testDeviceAuthExpiry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	require.NoError(t, s.CreateDeviceAuth(ctx, newDevice("dc-exp", "HHHHJJJJ", time.Minute)))
	later := time.Now().Add(2 * time.Minute)
	d, err := s.DecideDeviceAuth(ctx, "HHHHJJJJ", storage.DeviceDecision{Approve: true, Subject: "alice", Now: later})
	assert.ErrorIs(t, err, storage.ErrConflict, "an expired authorization cannot be approved")
	assert.Equal(t, storage.DevicePending, d.Status)

	// Approved in time, collected too late: expired, and never redeemed.
	require.NoError(t, s.CreateDeviceAuth(ctx, newDevice("dc-late", "KKKKLLLL", time.Minute)))
	_, err = s.DecideDeviceAuth(ctx, "KKKKLLLL", storage.DeviceDecision{Approve: true, Subject: "alice", Now: time.Now()})
	require.NoError(t, err)
	d, out, err := s.PollDeviceAuth(ctx, "dc-late", "tv", later)
	require.NoError(t, err)
	assert.Equal(t, storage.PollExpired, out)
	assert.Equal(t, storage.DeviceApproved, d.Status)

	// DeleteExpired keeps expired authorizations DeviceRetention longer.
	_, err = s.DeleteExpired(ctx, later)
	require.NoError(t, err)
	_, err = s.DeviceAuth(ctx, "dc-late")
	require.NoError(t, err, "kept for late polls")
	_, err = s.DeleteExpired(ctx, later.Add(storage.DeviceRetention+time.Minute))
	require.NoError(t, err)
	_, err = s.DeviceAuth(ctx, "dc-late")
	requireNotFound(t, err)
	_, err = s.DeviceAuthByUserCode(ctx, "KKKKLLLL")
	requireNotFound(t, err)
	// The user code is free again.
	require.NoError(t, s.CreateDeviceAuth(ctx, newDevice("dc-new", "KKKKLLLL", time.Minute)))
}

func testConcurrentRedeemDevice(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	require.NoError(t, s.CreateDeviceAuth(ctx, newDevice("dc-race", "MMMMNNNN", 10*time.Minute)))
	_, err := s.DecideDeviceAuth(ctx, "MMMMNNNN", storage.DeviceDecision{Approve: true, Subject: "alice", Now: time.Now()})
	require.NoError(t, err)
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, out, err := s.PollDeviceAuth(ctx, "dc-race", "tv", time.Now())
			if assert.NoError(t, err) && out == storage.PollRedeemed {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), won.Load(), "exactly one poll collects an approval")
}

func testConcurrentDecideDevice(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	require.NoError(t, s.CreateDeviceAuth(ctx, newDevice("dc-decide", "PPPPQQQQ", 10*time.Minute)))
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			_, err := s.DecideDeviceAuth(ctx, "PPPPQQQQ", storage.DeviceDecision{Approve: i%2 == 0, Subject: "alice", Now: time.Now()})
			if err == nil {
				won.Add(1)
			} else {
				assert.ErrorIs(t, err, storage.ErrConflict)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), won.Load(), "exactly one decision wins")
}

// testDeviceAuthSeen: SeenAt as created and touched; an approval with
// SeenSince needs the page seen since then, a denial does not.
func testDeviceAuthSeen(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	t0 := ms(0)
	d := newDevice("dc-seen", "QQQQRRRR", 10*time.Minute)
	d.SeenAt = t0
	require.NoError(t, s.CreateDeviceAuth(ctx, d))
	got, err := s.DeviceAuth(ctx, "dc-seen")
	require.NoError(t, err)
	assert.True(t, t0.Equal(got.SeenAt), "created with SeenAt %s, read %s", t0, got.SeenAt)

	t1 := t0.Add(20 * time.Second)
	require.NoError(t, s.TouchDeviceAuth(ctx, "dc-seen", t1))
	got, err = s.DeviceAuthByUserCode(ctx, "QQQQRRRR")
	require.NoError(t, err)
	assert.True(t, t1.Equal(got.SeenAt))
	requireNotFound(t, s.TouchDeviceAuth(ctx, "unknown", t1))

	// The page said it left: an approval that wants it seen since t1 fails
	// and changes nothing.
	require.NoError(t, s.TouchDeviceAuth(ctx, "dc-seen", time.Time{}))
	got, err = s.DecideDeviceAuth(ctx, "QQQQRRRR", storage.DeviceDecision{Approve: true, Subject: "alice", Now: time.Now(), SeenSince: t1})
	assert.ErrorIs(t, err, storage.ErrConflict)
	assert.Equal(t, storage.DevicePending, got.Status)
	assert.True(t, got.SeenAt.IsZero(), "the record says why: SeenAt %s", got.SeenAt)
	// Seen again (a reload): exactly at SeenSince is recent enough.
	require.NoError(t, s.TouchDeviceAuth(ctx, "dc-seen", t1))
	got, err = s.DecideDeviceAuth(ctx, "QQQQRRRR", storage.DeviceDecision{Approve: true, Subject: "alice", Now: time.Now(), SeenSince: t1})
	require.NoError(t, err)
	assert.Equal(t, storage.DeviceApproved, got.Status)
	// Touching works whatever the state.
	require.NoError(t, s.TouchDeviceAuth(ctx, "dc-seen", t1.Add(time.Second)))

	// A denial needs no page.
	require.NoError(t, s.CreateDeviceAuth(ctx, newDevice("dc-gone", "RRRRSSSS", 10*time.Minute)))
	got, err = s.DecideDeviceAuth(ctx, "RRRRSSSS", storage.DeviceDecision{Approve: false, Reason: "closed", Now: time.Now(), SeenSince: t1})
	require.NoError(t, err)
	assert.Equal(t, storage.DeviceDenied, got.Status)
	assert.Equal(t, "closed", got.Reason)
}
