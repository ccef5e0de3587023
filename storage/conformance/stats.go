package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	fositestorage "github.com/ory/fosite/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

var statsTests = []testCase{
	{"Stats", testStats},
	{"StatsUserCount", testUserCount},
	{"StatsRollUp", testRollUp},
	{"StatsRollUpRetention", testRollUpRetention},
}

var statsConcurrencyTests = []testCase{
	{"StatsUserCount", testConcurrentUserCount},
	{"StatsRollUp", testConcurrentRollUp},
}

// testStats: users counted, events counted per UTC day, type and method,
// only in [since, until) and only of the asked types.
func testStats(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	n, err := s.CountUsers(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
	for _, sub := range []string{"s1", "s2", "s3"} {
		require.NoError(t, s.CreateUser(ctx, storage.User{Subject: sub}))
	}
	n, err = s.CountUsers(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 3, n)

	appendStatsEvents(t, s)
	assertStatsCounts(t, s)
}

var statsDay = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func statsAt(d, h int) time.Time {
	return statsDay.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour)
}

func statsLogin(when time.Time, method string) storage.Event {
	e := storage.Event{Type: "login", Time: when, Subject: "s1"}
	if method != "" {
		e.Details = map[string]any{"method": method, "appid": "wx"}
	}
	return e
}

// appendStatsEvents writes the events assertStatsCounts counts.
func appendStatsEvents(t *testing.T, s storage.Storage) {
	t.Helper()
	require.NoError(t, s.AppendEvents(t.Context(),
		statsLogin(statsAt(0, 1), "wechat_qr"), statsLogin(statsAt(0, 23), "wechat_qr"), statsLogin(statsAt(0, 5), "wechat_jscode"),
		statsLogin(statsAt(1, 0), "wechat_qr"), statsLogin(statsAt(1, 2), ""),
		statsLogin(statsAt(-1, 23), "wechat_qr"), // before since
		statsLogin(statsAt(2, 0), "wechat_qr"),   // at until: out
		storage.Event{Type: "user_created", Time: statsAt(1, 3), Subject: "s2"},
		storage.Event{Type: "user_updated", Time: statsAt(1, 3), Subject: "s2"},
	))
}

var wantStatsCounts = map[string]int64{
	"2026-11-30 login wechat_qr":     2,
	"2026-11-30 login wechat_jscode": 1,
	"2026-12-01 login wechat_qr":     1,
	"2026-12-01 login ":              1,
	"2026-12-01 user_created ":       1,
}

// statsCounts returns CountEvents of logins and user_created over [since,
// until) as "day type method" → count.
func statsCounts(t *testing.T, s storage.Storage, since, until time.Time) map[string]int64 {
	t.Helper()
	counts, err := s.CountEvents(t.Context(), []string{"login", "user_created"}, since, until)
	require.NoError(t, err)
	got := map[string]int64{}
	for _, c := range counts {
		got[c.Day.Format(time.DateOnly)+" "+c.Type+" "+c.Method] += c.Count
		assert.Equal(t, time.UTC, c.Day.Location())
	}
	return got
}

func assertStatsCounts(t *testing.T, s storage.Storage) {
	t.Helper()
	assert.Equal(t, wantStatsCounts, statsCounts(t, s, statsDay, statsDay.AddDate(0, 0, 2)))
}

// testUserCount: the count follows every way users come and go (created,
// created by a first login, erased, one whose creation is rolled back),
// without counting rows.
func testUserCount(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	count := func() int64 {
		t.Helper()
		n, err := s.CountUsers(ctx)
		require.NoError(t, err)
		return n
	}
	for i := range 5 {
		require.NoError(t, s.CreateUser(ctx, storage.User{Subject: fmt.Sprintf("u%d", i)}))
	}
	assert.EqualValues(t, 5, count())
	_, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "wx", OpenID: "o1", NewSubject: "u-linked", Now: ms(0)})
	require.NoError(t, err)
	_, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "wx", OpenID: "o1", NewSubject: "u-again", Now: ms(0)})
	require.NoError(t, err)
	assert.EqualValues(t, 6, count(), "a returning login creates nobody")
	assert.ErrorIs(t, s.CreateUser(ctx, storage.User{Subject: "u0"}), storage.ErrAlreadyExists)
	assert.EqualValues(t, 6, count(), "a refused creation")

	require.NoError(t, s.DeleteUser(ctx, "u-linked"))
	require.NoError(t, s.DeleteUser(ctx, "u1"))
	requireNotFound(t, s.DeleteUser(ctx, "u1"))
	assert.EqualValues(t, 4, count())

	if _, ok := s.(fositestorage.Transactional); ok {
		boom := errors.New("boom")
		err := storage.InTx(ctx, s, func(ctx context.Context) error {
			if err := s.CreateUser(ctx, storage.User{Subject: "rolled-back"}); err != nil {
				return err
			}
			if err := s.DeleteUser(ctx, "u2"); err != nil {
				return err
			}
			return boom
		})
		require.ErrorIs(t, err, boom)
		assert.EqualValues(t, 4, count(), "a rolled-back transaction")
		require.NoError(t, storage.InTx(ctx, s, func(ctx context.Context) error {
			if err := s.CreateUser(ctx, storage.User{Subject: "in-tx"}); err != nil {
				return err
			}
			return s.CreateUser(ctx, storage.User{Subject: "in-tx-2"})
		}))
		assert.EqualValues(t, 6, count(), "two users in one transaction")
	}
}

// testRollUp: rolled up, the counts are those of the events; the days
// rolled up come from the roll-ups (the watermark's day up to it) and the
// tail from the events; rolling up again changes nothing; part days at
// either end are counted from the events.
func testRollUp(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wm, err := s.RollUpEvents(ctx, statsAt(0, 0))
	require.NoError(t, err)
	assert.True(t, wm.IsZero() || !wm.After(statsAt(0, 0)), "watermark %v with no events", wm)

	appendStatsEvents(t, s)
	assertStatsCounts(t, s)
	wm, err = s.RollUpEvents(ctx, statsAt(1, 1).Add(30*time.Minute+17*time.Second)) // the tail: from 01:30 on day 1
	require.NoError(t, err)
	assert.True(t, statsAt(1, 1).Add(30*time.Minute).Equal(wm), "watermark %v, want %v", wm, statsAt(1, 1).Add(30*time.Minute))
	assertStatsCounts(t, s)
	// Events after the watermark (the tail) are counted as they come.
	require.NoError(t, s.AppendEvents(ctx, statsLogin(statsAt(1, 4), "wechat_qr")))
	got := statsCounts(t, s, statsDay, statsDay.AddDate(0, 0, 2))
	assert.EqualValues(t, 2, got["2026-12-01 login wechat_qr"])
	got["2026-12-01 login wechat_qr"]--
	assert.Equal(t, wantStatsCounts, got)

	// Rolled up to the end, and again: nothing counted twice.
	for range 2 {
		wm, err = s.RollUpEvents(ctx, statsAt(3, 0))
		require.NoError(t, err)
		assert.True(t, statsAt(3, 0).Equal(wm))
		got = statsCounts(t, s, statsDay, statsDay.AddDate(0, 0, 2))
		got["2026-12-01 login wechat_qr"]--
		assert.Equal(t, wantStatsCounts, got)
	}
	wm, err = s.RollUpEvents(ctx, statsAt(2, 0))
	require.NoError(t, err)
	assert.True(t, statsAt(3, 0).Equal(wm), "the watermark never goes back")

	// Part days, from the events.
	require.NoError(t, s.AppendEvents(ctx, statsLogin(statsAt(0, 0).Add(45*time.Minute), "scan")))
	got = statsCounts(t, s, statsAt(0, 0).Add(30*time.Minute), statsAt(0, 23).Add(30*time.Minute))
	assert.Equal(t, map[string]int64{
		"2026-11-30 login wechat_qr":     2,
		"2026-11-30 login wechat_jscode": 1,
		"2026-11-30 login scan":          1,
	}, got)
	got = statsCounts(t, s, statsAt(0, 1).Add(time.Minute), statsAt(0, 23))
	assert.Equal(t, map[string]int64{"2026-11-30 login wechat_jscode": 1}, got)
}

// testRollUpRetention: deleting old events deletes the roll-ups of the
// days that ended by then, so old days count nothing, and keeps the
// others.
func testRollUpRetention(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	appendStatsEvents(t, s)
	_, err := s.RollUpEvents(ctx, statsAt(3, 0))
	require.NoError(t, err)
	n, err := s.DeleteEventsBefore(ctx, statsAt(1, 0).Add(30*time.Minute))
	require.NoError(t, err)
	assert.EqualValues(t, 5, n)
	// The day that straddles the retention (day 1) keeps its roll-up;
	// older days are gone with their events.
	want := map[string]int64{
		"2026-12-01 login wechat_qr": 1, // 00:00, the event gone, its day's roll-up kept
		"2026-12-01 login ":          1,
		"2026-12-01 user_created ":   1,
		"2026-12-02 login wechat_qr": 1,
	}
	assert.Equal(t, want, statsCounts(t, s, statsDay.AddDate(0, 0, -2), statsDay.AddDate(0, 0, 3)))
	n, err = s.DeleteEventsBefore(ctx, statsAt(1, 1))
	require.NoError(t, err)
	assert.Zero(t, n)
	assert.Equal(t, want, statsCounts(t, s, statsDay.AddDate(0, 0, -2), statsDay.AddDate(0, 0, 3)))
	n, err = s.DeleteEventsBefore(ctx, statsAt(2, 0))
	require.NoError(t, err)
	assert.EqualValues(t, 3, n)
	assert.Equal(t, map[string]int64{"2026-12-02 login wechat_qr": 1},
		statsCounts(t, s, statsDay.AddDate(0, 0, -2), statsDay.AddDate(0, 0, 3)))
}

// testConcurrentUserCount: users created and erased at once, on many
// connections, are all counted.
func testConcurrentUserCount(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	race(parallelism, func(i int) {
		if i%2 == 0 {
			assert.NoError(t, s.CreateUser(ctx, storage.User{Subject: fmt.Sprintf("c%d", i)}))
			return
		}
		_, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "wx", OpenID: fmt.Sprintf("o%d", i), NewSubject: fmt.Sprintf("c%d", i), Now: ms(0)})
		assert.NoError(t, err)
	})
	n, err := s.CountUsers(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, parallelism, n)
	race(parallelism, func(i int) {
		if i%3 == 0 {
			assert.NoError(t, s.DeleteUser(ctx, fmt.Sprintf("c%d", i)))
		} else {
			assert.NoError(t, s.CreateUser(ctx, storage.User{Subject: fmt.Sprintf("d%d", i)}))
		}
	})
	deleted := (parallelism + 2) / 3
	n, err = s.CountUsers(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, parallelism-deleted+(parallelism-deleted), n)
}

// testConcurrentRollUp: janitors racing to roll up count each hour once.
func testConcurrentRollUp(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	appendStatsEvents(t, s)
	var evs []storage.Event
	for i := range 200 { // more than a day of hours: several steps
		evs = append(evs, statsLogin(statsAt(-3, i%72), "device"))
	}
	require.NoError(t, s.AppendEvents(ctx, evs...))
	before := statsCounts(t, s, statsDay.AddDate(0, 0, -5), statsDay.AddDate(0, 0, 3))
	race(8, func(int) {
		_, err := s.RollUpEvents(ctx, statsAt(3, 0))
		assert.NoError(t, err)
	})
	wm, err := s.RollUpEvents(ctx, statsAt(3, 0))
	require.NoError(t, err)
	assert.True(t, statsAt(3, 0).Equal(wm), "watermark %v", wm)
	assert.Equal(t, before, statsCounts(t, s, statsDay.AddDate(0, 0, -5), statsDay.AddDate(0, 0, 3)))
	assert.Equal(t, wantStatsCounts, statsCounts(t, s, statsDay, statsDay.AddDate(0, 0, 2)))
}
