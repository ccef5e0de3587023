package conformance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// testBackchannel checks storage.BackchannelStore: a session's clients
// become logout jobs once, a subject's (and one client's) likewise; jobs
// are due, rescheduled, deleted and expire.
func testBackchannel(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	end := now.Add(time.Hour)
	giveUp := now.Add(10 * time.Minute)
	require.NoError(t, s.AddSessionClient(ctx, "sid-1", "alice", "rp-a", end))
	require.NoError(t, s.AddSessionClient(ctx, "sid-1", "alice", "rp-b", end))
	require.NoError(t, s.AddSessionClient(ctx, "sid-1", "alice", "rp-b", end), "recording twice is an upsert")
	require.NoError(t, s.AddSessionClient(ctx, "sid-2", "alice", "rp-a", end))
	require.NoError(t, s.AddSessionClient(ctx, "sid-3", "bob", "rp-a", end))

	n, err := s.EnqueueSessionLogouts(ctx, "sid-1", now, giveUp)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = s.EnqueueSessionLogouts(ctx, "sid-1", now, giveUp)
	require.NoError(t, err)
	require.Equal(t, 0, n, "a session's clients are queued once")

	jobs, err := s.DueLogouts(ctx, now, 10)
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	clients := map[string]bool{}
	for _, j := range jobs {
		require.Equal(t, "alice", j.Subject)
		require.Equal(t, "sid-1", j.SID)
		require.Equal(t, 0, j.Attempts)
		require.True(t, j.ExpiresAt.Equal(giveUp))
		require.NotEmpty(t, j.ID)
		clients[j.ClientID] = true
	}
	require.Equal(t, map[string]bool{"rp-a": true, "rp-b": true}, clients)

	// A failed attempt moves the job out of the due set until its time.
	require.NoError(t, s.RescheduleLogout(ctx, jobs[0].ID, 1, now.Add(time.Minute)))
	due, err := s.DueLogouts(ctx, now, 10)
	require.NoError(t, err)
	require.Len(t, due, 1)
	due, err = s.DueLogouts(ctx, now.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, due, 2)
	for _, j := range due {
		if j.ID == jobs[0].ID {
			require.Equal(t, 1, j.Attempts)
		}
	}
	due, err = s.DueLogouts(ctx, now.Add(time.Minute), 1)
	require.NoError(t, err)
	require.Len(t, due, 1, "limit")
	require.NoError(t, s.DeleteLogout(ctx, jobs[1].ID))
	require.NoError(t, s.DeleteLogout(ctx, jobs[1].ID), "deleting twice is not an error")
	require.NoError(t, s.RescheduleLogout(ctx, "no-such-job", 1, now), "a missing job is not an error")

	// Consent withdrawal: only that client of that subject.
	n, err = s.EnqueueSubjectLogouts(ctx, "alice", "rp-b", now, giveUp)
	require.NoError(t, err)
	require.Equal(t, 0, n)
	n, err = s.EnqueueSubjectLogouts(ctx, "alice", "rp-a", now, giveUp)
	require.NoError(t, err)
	require.Equal(t, 1, n, "alice's other session with rp-a")
	n, err = s.EnqueueSubjectLogouts(ctx, "bob", "", now, giveUp)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	// Past their give-up time jobs are not due, and DeleteExpired drops
	// them with expired session records.
	require.NoError(t, s.AddSessionClient(ctx, "sid-4", "carol", "rp-a", now.Add(time.Second)))
	due, err = s.DueLogouts(ctx, giveUp, 10)
	require.NoError(t, err)
	require.Empty(t, due)
	_, err = s.DeleteExpired(ctx, giveUp.Add(time.Second))
	require.NoError(t, err)
	n, err = s.EnqueueSessionLogouts(ctx, "sid-4", now, giveUp)
	require.NoError(t, err)
	require.Equal(t, 0, n, "expired session records are gone")
	due, err = s.DueLogouts(ctx, now.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Empty(t, due, "expired jobs are gone")
}

// testBackchannelUserPaths checks that the users' session-ending paths
// (EndUserSessions, SetUserDisabled, DeleteUser) queue the logouts of the
// subject's sessions in their own transaction.
func testBackchannelUserPaths(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	end := time.Now().Add(time.Hour)
	for _, sub := range []string{"bcl-out", "bcl-disabled", "bcl-erased", "bcl-other"} {
		require.NoError(t, s.CreateUser(ctx, storage.User{Subject: sub}))
		require.NoError(t, s.AddSessionClient(ctx, "sid-"+sub, sub, "rp-a", end))
	}
	require.NoError(t, s.EndUserSessions(ctx, "bcl-out"))
	require.NoError(t, s.SetUserDisabled(ctx, "bcl-disabled", true))
	require.NoError(t, s.DeleteUser(ctx, "bcl-erased"))
	jobs, err := s.DueLogouts(ctx, time.Now().Add(time.Second), 10)
	require.NoError(t, err)
	got := map[string]string{}
	for _, j := range jobs {
		got[j.Subject] = j.SID
		require.True(t, j.ExpiresAt.After(time.Now().Add(storage.LogoutRetryFor-time.Minute)), "given up after LogoutRetryFor")
	}
	require.Equal(t, map[string]string{"bcl-out": "sid-bcl-out", "bcl-disabled": "sid-bcl-disabled", "bcl-erased": "sid-bcl-erased"}, got)
}
