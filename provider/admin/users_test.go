package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

func TestAdmin_Users(t *testing.T) {
	e := newEnv(t, testToken)
	ctx := context.Background()

	// Pre-provision.
	status, u, hdr := e.do(http.MethodPost, "/admin/users", map[string]any{
		"name": "Alice", "phone_number": "+8613800138000", "external_id": "emp-1", "roles": []string{"viewer", "admin"},
	})
	if status != http.StatusCreated || u["name"] != "Alice" || u["phone_number_verified"] != false || u["last_login_at"] != nil {
		t.Fatalf("create: %d %v", status, u)
	}
	sub := u["sub"].(string)
	if len(sub) != 32 || hdr.Get("Location") != "/admin/users/"+sub {
		t.Fatalf("sub %q, Location %q", sub, hdr.Get("Location"))
	}
	if fmt.Sprint(u["roles"]) != "[admin viewer]" {
		t.Fatalf("roles %v", u["roles"])
	}
	status, body, _ := e.do(http.MethodPost, "/admin/users", map[string]any{"external_id": "emp-1"})
	if status != http.StatusConflict || body["field"] != "external_id" {
		t.Fatalf("duplicate external_id: %d %v", status, body)
	}

	// Validation errors name the field.
	for _, tc := range []struct {
		body  string
		field string
	}{
		{`{"phone_number": "13800138000"}`, "phone_number"},
		{`{"roles": ["root"]}`, "roles"},
		{`{"disabled": "yes"}`, "disabled"},
		{`{"sub": "mine"}`, "sub"},
		{`{"nickname": "x"}`, "nickname"},
	} {
		status, body, _ := e.do(http.MethodPost, "/admin/users", tc.body)
		if status != http.StatusBadRequest || body["field"] != tc.field || body["error"] != "invalid_request" || !strings.HasPrefix(body["error_description"].(string), tc.field+": ") {
			t.Errorf("%s: %d %v, want 400 naming %s", tc.body, status, body, tc.field)
		}
	}

	// Search.
	if _, err := e.store.LinkIdentity(ctx, storage.LinkRequest{AppID: "wxapp", OpenID: "open-bob", UnionID: "union-bob", Kind: "miniprogram", NewSubject: "bob-sub", Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{
		"phone_number=%2B8613800138000": sub, "external_id=emp-1": sub, "openid=open-bob": "bob-sub",
		"unionid=union-bob": "bob-sub", "q=Ali": sub, "q=bob-": "bob-sub",
	} {
		status, body, _ := e.do(http.MethodGet, "/admin/users?"+q, nil)
		users, _ := body["users"].([]any)
		if status != http.StatusOK || len(users) != 1 || users[0].(map[string]any)["sub"] != want {
			t.Errorf("search %s: %d %v", q, status, body)
		}
	}
	status, body, _ = e.do(http.MethodGet, "/admin/users?limit=1", nil)
	if status != http.StatusOK || len(body["users"].([]any)) != 1 || body["next_page_token"] == nil {
		t.Fatalf("page 1: %d %v", status, body)
	}
	status, body, _ = e.do(http.MethodGet, "/admin/users?limit=1&page_token="+url.QueryEscape(body["next_page_token"].(string)), nil)
	if status != http.StatusOK || len(body["users"].([]any)) != 1 || body["next_page_token"] != nil {
		t.Fatalf("page 2: %d %v", status, body)
	}
	for _, q := range []string{"limit=0", "limit=x", "page_token=zzz"} {
		if status, body, _ := e.do(http.MethodGet, "/admin/users?"+q, nil); status != http.StatusBadRequest || body["field"] == nil {
			t.Errorf("%s: %d %v", q, status, body)
		}
	}

	// Get one, with identities.
	status, body, _ = e.do(http.MethodGet, "/admin/users/bob-sub", nil)
	ids, _ := body["identities"].([]any)
	if status != http.StatusOK || len(ids) != 1 || ids[0].(map[string]any)["openid"] != "open-bob" || ids[0].(map[string]any)["kind"] != "miniprogram" {
		t.Fatalf("get: %d %v", status, body)
	}

	// Merge patch: null clears, disabled ends the sessions.
	if err := e.store.CreateBrowserSession(ctx, storage.BrowserSession{ID: "bs", Subject: sub, AuthTime: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	status, body, _ = e.doType(http.MethodPatch, "/admin/users/"+sub, "application/merge-patch+json", `{"external_id": null, "name": "Alice Li", "disabled": true}`)
	if status != http.StatusOK || body["external_id"] != "" || body["name"] != "Alice Li" || body["disabled"] != true || body["sessions"] != nil {
		t.Fatalf("patch: %d %v", status, body)
	}
	if _, err := e.store.BrowserSession(ctx, "bs"); err == nil {
		t.Fatal("disabling kept the browser session")
	}
	status, body, _ = e.do(http.MethodPatch, "/admin/users/"+sub, `{"disabled": false}`)
	if status != http.StatusOK || body["disabled"] != false {
		t.Fatalf("enable: %d %v", status, body)
	}
	if status, _, _ := e.do(http.MethodPatch, "/admin/users/nobody", `{"name": "x"}`); status != http.StatusNotFound {
		t.Fatalf("patch of nobody: %d", status)
	}

	// Events of all that, newest first.
	status, body, _ = e.do(http.MethodGet, "/admin/events?sub="+sub, nil)
	var types []string
	for _, ev := range body["events"].([]any) {
		types = append(types, ev.(map[string]any)["type"].(string))
	}
	if status != http.StatusOK || strings.Join(types, ",") != "user_enabled,user_disabled,user_updated,user_created" {
		t.Fatalf("events: %d %v", status, types)
	}
	if status, body, _ := e.do(http.MethodGet, "/admin/events?since=yesterday", nil); status != http.StatusBadRequest || body["field"] != "since" {
		t.Fatalf("bad since: %d %v", status, body)
	}
	status, body, _ = e.do(http.MethodGet, "/admin/events?type=user_disabled&limit=1", nil)
	if status != http.StatusOK || len(body["events"].([]any)) != 1 {
		t.Fatalf("type filter: %d %v", status, body)
	}

	// Unlink, sign out everywhere, delete.
	if status, _, _ := e.do(http.MethodDelete, "/admin/users/bob-sub/identities/wxapp", nil); status != http.StatusNoContent {
		t.Fatalf("unlink: %d", status)
	}
	if status, _, _ := e.do(http.MethodDelete, "/admin/users/bob-sub/identities/wxapp", nil); status != http.StatusNotFound {
		t.Fatalf("unlink again: %d", status)
	}
	if status, _, _ := e.do(http.MethodDelete, "/admin/users/bob-sub/sessions", nil); status != http.StatusNoContent {
		t.Fatalf("sign out everywhere: %d", status)
	}
	if status, _, _ := e.do(http.MethodDelete, "/admin/users/"+sub, nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d", status)
	}
	if status, _, _ := e.do(http.MethodGet, "/admin/users/"+sub, nil); status != http.StatusNotFound {
		t.Fatalf("get deleted: %d", status)
	}
	if status, _, _ := e.do(http.MethodDelete, "/admin/users/"+sub, nil); status != http.StatusNotFound {
		t.Fatalf("delete again: %d", status)
	}
	status, body, _ = e.do(http.MethodGet, "/admin/events?type=user_deleted", nil)
	if evs := body["events"].([]any); status != http.StatusOK || len(evs) != 1 || evs[0].(map[string]any)["sub"] != sub {
		t.Fatalf("user_deleted event: %d %v", status, body)
	}
}
