package storage_test

import (
	"context"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/memory"
)

func TestRunJanitor_DeletesExpired(t *testing.T) {
	s := memory.New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &storage.Client{ID: "c", TokenEndpointAuthMethod: storage.AuthMethodNone}
	if err := s.CreateClient(ctx, *client); err != nil {
		t.Fatal(err)
	}
	sess := &openid.DefaultSession{}
	sess.SetExpiresAt(fosite.AccessToken, time.Now().Add(-time.Minute))
	req := &fosite.Request{ID: "r1", RequestedAt: time.Now().Add(-time.Hour), Client: client, Session: sess}
	if err := s.CreateAccessTokenSession(ctx, "expired", req); err != nil {
		t.Fatal(err)
	}
	live := &openid.DefaultSession{}
	live.SetExpiresAt(fosite.AccessToken, time.Now().Add(time.Hour))
	if err := s.CreateAccessTokenSession(ctx, "live", &fosite.Request{ID: "r2", RequestedAt: time.Now(), Client: client, Session: live}); err != nil {
		t.Fatal(err)
	}

	old := storage.Event{Time: time.Now().Add(-181 * 24 * time.Hour), Type: storage.EventLogin, Subject: "old"}
	recent := storage.Event{Time: time.Now().Add(-179 * 24 * time.Hour), Type: storage.EventLogin, Subject: "recent"}
	if err := s.AppendEvents(ctx, old, recent); err != nil {
		t.Fatal(err)
	}

	go storage.RunJanitor(ctx, s, 10*time.Millisecond, 180*24*time.Hour, "test", nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.GetAccessTokenSession(ctx, "expired", &openid.DefaultSession{})
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the janitor never deleted the expired token")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := s.GetAccessTokenSession(ctx, "live", &openid.DefaultSession{}); err != nil {
		t.Fatalf("the janitor deleted a live token: %v", err)
	}
	for {
		evs, _, err := s.Events(ctx, storage.EventQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 {
			if evs[0].Subject != "recent" {
				t.Fatalf("the janitor kept %v, want the recent event", evs[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the janitor kept %d events past retention", len(evs))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The janitor rolled the trail up to RollUpLag ago; the recent login
	// is counted (from its roll-up), the deleted one is not.
	wm, err := s.RollUpEvents(ctx, time.Time{})
	if err != nil || wm.Before(time.Now().Add(-storage.RollUpLag-time.Hour)) {
		t.Fatalf("watermark %v, %v: the janitor did not roll up", wm, err)
	}
	counts, err := s.CountEvents(ctx, []string{storage.EventLogin}, time.Now().Add(-200*24*time.Hour), time.Now())
	if err != nil || len(counts) != 1 || counts[0].Count != 1 || !counts[0].Day.Equal(storage.DayOf(recent.Time)) {
		t.Fatalf("counts %+v, %v: want the recent login", counts, err)
	}
}
