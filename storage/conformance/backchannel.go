package conformance

import (
	"fmt"
	"sync"
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

	jobs, err := s.ClaimLogouts(ctx, now, now.Add(time.Second), 10)
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	clients := map[string]bool{}
	for _, j := range jobs {
		require.Equal(t, "alice", j.Subject)
		require.Equal(t, "sid-1", j.SID)
		require.Equal(t, 0, j.Attempts)
		require.True(t, j.ExpiresAt.Equal(giveUp))
		require.True(t, j.NextAttempt.Equal(now.Add(time.Second)), "the claim")
		require.NotEmpty(t, j.ID)
		clients[j.ClientID] = true
	}
	require.Equal(t, map[string]bool{"rp-a": true, "rp-b": true}, clients)
	again, err := s.ClaimLogouts(ctx, now, now.Add(time.Second), 10)
	require.NoError(t, err)
	require.Empty(t, again, "claimed jobs are not claimed again while the claim holds")

	// A failed attempt moves the job out of the due set until its time.
	ok, err := s.RescheduleLogout(ctx, jobs[0], 1, now.Add(time.Minute))
	require.NoError(t, err)
	require.True(t, ok)
	due, err := s.ClaimLogouts(ctx, now.Add(time.Second), now.Add(2*time.Second), 10)
	require.NoError(t, err)
	require.Len(t, due, 1, "the other job's claim lapsed; the rescheduled one is not due")
	require.Equal(t, jobs[1].ID, due[0].ID)
	ok, err = s.DeleteLogout(ctx, jobs[1])
	require.NoError(t, err)
	require.False(t, ok, "a lapsed claim deletes nothing: the job was claimed again")
	ok, err = s.RescheduleLogout(ctx, jobs[1], 5, now)
	require.NoError(t, err)
	require.False(t, ok, "a lapsed claim reschedules nothing")
	due, err = s.ClaimLogouts(ctx, now.Add(time.Minute), now.Add(time.Minute+time.Second), 1)
	require.NoError(t, err)
	require.Len(t, due, 1, "limit")
	require.Equal(t, jobs[1].ID, due[0].ID, "oldest due first")
	ok, err = s.DeleteLogout(ctx, due[0])
	require.NoError(t, err)
	require.True(t, ok, "the current claim deletes")
	due, err = s.ClaimLogouts(ctx, now.Add(time.Minute), now.Add(time.Minute+time.Second), 10)
	require.NoError(t, err)
	require.Len(t, due, 1)
	require.Equal(t, jobs[0].ID, due[0].ID)
	require.Equal(t, 1, due[0].Attempts)
	ok, err = s.DeleteLogout(ctx, due[0])
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.DeleteLogout(ctx, due[0])
	require.NoError(t, err)
	require.False(t, ok, "deleting twice is not an error")
	ok, err = s.RescheduleLogout(ctx, storage.LogoutJob{ID: "no-such-job", NextAttempt: now}, 1, now)
	require.NoError(t, err, "a missing job is not an error")
	require.False(t, ok)

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
	due, err = s.ClaimLogouts(ctx, giveUp, giveUp.Add(time.Second), 10)
	require.NoError(t, err)
	require.Empty(t, due)
	_, err = s.DeleteExpired(ctx, giveUp.Add(time.Second))
	require.NoError(t, err)
	n, err = s.EnqueueSessionLogouts(ctx, "sid-4", now, giveUp)
	require.NoError(t, err)
	require.Equal(t, 0, n, "expired session records are gone")
	due, err = s.ClaimLogouts(ctx, now.Add(time.Minute), now.Add(2*time.Minute), 10)
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
	jobs, err := s.ClaimLogouts(ctx, time.Now().Add(time.Second), time.Now().Add(time.Minute), 10)
	require.NoError(t, err)
	got := map[string]string{}
	for _, j := range jobs {
		got[j.Subject] = j.SID
		require.True(t, j.ExpiresAt.After(time.Now().Add(storage.LogoutRetryFor-time.Minute)), "given up after LogoutRetryFor")
	}
	require.Equal(t, map[string]string{"bcl-out": "sid-bcl-out", "bcl-disabled": "sid-bcl-disabled", "bcl-erased": "sid-bcl-erased"}, got)
}

// testBackchannelClaims checks that concurrent claimers (replicas) never
// get the same job: every job is claimed exactly once.
func testBackchannelClaims(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	const sessions, claimers = 60, 6
	for i := range sessions {
		require.NoError(t, s.AddSessionClient(ctx, fmt.Sprintf("sid-%02d", i), "alice", "rp-a", now.Add(time.Hour)))
	}
	n, err := s.EnqueueSubjectLogouts(ctx, "alice", "", now, now.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, sessions, n)
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range claimers {
		wg.Go(func() {
			for {
				jobs, err := s.ClaimLogouts(ctx, now, now.Add(time.Minute), 4)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, j := range jobs {
					got[j.ID]++
				}
				total := len(got)
				mu.Unlock()
				if total == sessions {
					return
				}
			}
		})
	}
	wg.Wait()
	require.Len(t, got, sessions)
	for id, n := range got {
		require.Equal(t, 1, n, "job %s claimed %d times", id, n)
	}
}
