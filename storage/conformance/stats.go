package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

var statsTests = []testCase{
	{"Stats", testStats},
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

	day := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	at := func(d int, h int) time.Time { return day.AddDate(0, 0, d).Add(time.Duration(h) * time.Hour) }
	login := func(when time.Time, method string) storage.Event {
		e := storage.Event{Type: "login", Time: when, Subject: "s1"}
		if method != "" {
			e.Details = map[string]any{"method": method, "appid": "wx"}
		}
		return e
	}
	require.NoError(t, s.AppendEvents(ctx,
		login(at(0, 1), "wechat_qr"), login(at(0, 23), "wechat_qr"), login(at(0, 5), "wechat_jscode"),
		login(at(1, 0), "wechat_qr"), login(at(1, 2), ""),
		login(at(-1, 23), "wechat_qr"), // before since
		login(at(2, 0), "wechat_qr"),   // at until: out
		storage.Event{Type: "user_created", Time: at(1, 3), Subject: "s2"},
		storage.Event{Type: "user_updated", Time: at(1, 3), Subject: "s2"},
	))
	counts, err := s.CountEvents(ctx, []string{"login", "user_created"}, day, day.AddDate(0, 0, 2))
	require.NoError(t, err)
	got := map[string]int64{}
	for _, c := range counts {
		got[c.Day.Format(time.DateOnly)+" "+c.Type+" "+c.Method] += c.Count
		assert.Equal(t, time.UTC, c.Day.Location())
	}
	assert.Equal(t, map[string]int64{
		"2026-11-30 login wechat_qr":     2,
		"2026-11-30 login wechat_jscode": 1,
		"2026-12-01 login wechat_qr":     1,
		"2026-12-01 login ":              1,
		"2026-12-01 user_created ":       1,
	}, got)
}
