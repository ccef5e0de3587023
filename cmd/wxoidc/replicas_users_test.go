package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// TestReplicas_DisabledEverywhere (issue 11): an operator disables a user
// through the admin API of one replica; the other replica, asked right
// after the answer, issues them nothing and treats their tokens and
// sessions as gone: the WeChat grant and refresh answer invalid_grant,
// userinfo 401, introspection inactive, the browser session is deleted.
// Nothing is cached per process, so there is no delay to wait out.
func TestReplicas_DisabledEverywhere(t *testing.T) {
	c := newCluster(t, 2)
	a := c.urls[0] // the admin API below is replica 1's
	status, tok := c.grant(a, c.code("dora"), "openid offline_access")
	if status != http.StatusOK {
		t.Fatalf("grant: %d %v", status, tok)
	}
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	sub := subOf(t, c, at)
	ctx := context.Background()
	if err := c.stacks[0].store.CreateBrowserSession(ctx, storage.BrowserSession{ID: "dora-browser", Subject: sub, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// The admin API of replica b disables dora.
	cfg := defaultConfig()
	cfg.Console.Enabled, cfg.Metrics.Enabled = false, false
	srv := httptest.NewUnstartedServer(nil)
	h, err := adminHandler(ctx, cfg, c.stacks[1], srv.Listener.Addr())
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = h
	srv.Start()
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/admin/users/"+url.PathEscape(sub), bytes.NewReader([]byte(`{"disabled": true}`)))
	req.Header.Set("Content-Type", "application/merge-patch+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("disable: %d", resp.StatusCode)
	}

	// Replica a, at once.
	if status, body := c.post(a, "/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {devMiniClient}, "refresh_token": {rt}}, "", ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("refresh on the other replica: %d %v", status, body)
	}
	if status, body := c.grant(a, c.code("dora"), "openid"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("WeChat grant on the other replica: %d %v", status, body)
	}
	req, _ = http.NewRequest(http.MethodGet, a+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+at)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo on the other replica: %v %v", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
	status, intro := c.post(a, "/oauth2/introspect", url.Values{"token": {at}}, replicaWebClient, replicaWebSecret)
	if status != http.StatusOK || intro["active"] != false {
		t.Errorf("introspection on the other replica: %d %v", status, intro)
	}
	if _, err := c.stacks[0].store.BrowserSession(ctx, "dora-browser"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the browser session survived: %v", err)
	}
	var evs []storage.Event
	evs, _, err = c.stacks[0].store.Events(ctx, storage.EventQuery{Subject: sub, Type: storage.EventUserDisabled})
	if err != nil || len(evs) != 1 {
		t.Errorf("user_disabled events %v %v", evs, err)
	} else if b, _ := json.Marshal(evs[0].Details); !bytes.Contains(b, []byte("admin-token")) {
		t.Errorf("the event does not name the operator: %s", b)
	}
}
