package admin_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	fositestorage "github.com/ory/fosite/storage"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/admin"
	"github.com/wxoidc/wxoidc/storage"
	"github.com/wxoidc/wxoidc/storage/sqlite"
)

// eventFault is a store whose audit trail cannot be written while failing
// is set (a full disk, a lost connection at the wrong moment).
type eventFault struct {
	storage.Storage
	fositestorage.Transactional
	failing atomic.Bool
}

func (s *eventFault) AppendEvents(ctx context.Context, events ...storage.Event) error {
	if s.failing.Load() {
		return errors.New("append events: disk full")
	}
	return s.Storage.AppendEvents(ctx, events...)
}

// TestAdmin_ClientAndKeyEventsAtomic: a client or key change through the
// admin API (which the console and the CLI use) and its audit event are
// kept together or not at all: an event that cannot be written undoes the
// change (500, nothing changed, the key manager holds no new key), and a
// change that fails writes no event.
func TestAdmin_ClientAndKeyEventsAtomic(t *testing.T) {
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	if err := sq.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	st := &eventFault{Storage: sq, Transactional: sq}
	km, err := keys.New(st, keys.Config{Secret: testSecret, Algorithms: []string{"ES256"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := km.Load(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Config{Clients: st, Keys: km, Users: st, Secret: testSecret, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: h, token: testToken, host: "127.0.0.1:8081"}
	events := func() []string {
		t.Helper()
		evs, _, err := st.Events(ctx, storage.EventQuery{Limit: storage.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ev := range evs {
			out = append(out, ev.Type+" "+ev.ClientID)
			if ev.Details["by"] != "admin-token" {
				t.Errorf("%s names %v as its operator, want admin-token", ev.Type, ev.Details["by"])
			}
		}
		slices.Sort(out)
		return out
	}
	app := map[string]any{"client_id": "app1", "client_name": "One", "redirect_uris": []string{"https://one.example/cb"}}
	if code, _, _ := e.do(http.MethodPost, "/admin/clients", app); code != http.StatusCreated {
		t.Fatalf("create: %d", code)
	}
	before, err := st.Client(ctx, "app1")
	if err != nil {
		t.Fatal(err)
	}
	keysBefore, err := km.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jwksBefore := string(km.JWKS())

	st.failing.Store(true)
	for _, tc := range []struct {
		name, method, path string
		body               any
	}{
		{"create", http.MethodPost, "/admin/clients", map[string]any{"client_id": "app2", "redirect_uris": []string{"https://two.example/cb"}}},
		{"update", http.MethodPut, "/admin/clients/app1", map[string]any{"client_name": "Renamed", "redirect_uris": []string{"https://one.example/cb"}}},
		{"rotate secret", http.MethodPost, "/admin/clients/app1/secret", "{}"},
		{"delete", http.MethodDelete, "/admin/clients/app1", nil},
		{"rotate keys", http.MethodPost, "/admin/keys/rotate", "{}"},
	} {
		code, body, _ := e.do(tc.method, tc.path, tc.body)
		if code != http.StatusInternalServerError {
			t.Errorf("%s with an audit trail that cannot be written: %d %v, want 500", tc.name, code, body)
		}
		desc, _ := body["error_description"].(string)
		if s, _ := body["client_secret"].(string); s != "" || strings.Contains(desc, "disk full") {
			t.Errorf("%s: the answer shows a secret or the storage error: %v", tc.name, body)
		}
	}
	st.failing.Store(false)
	if _, err := st.Client(ctx, "app2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a create whose event failed left the client: %v", err)
	}
	after, err := st.Client(ctx, "app1")
	if err != nil {
		t.Fatalf("a delete whose event failed removed the client: %v", err)
	}
	if after.Name != "One" || string(after.SecretHash) != string(before.SecretHash) {
		t.Errorf("an update or rotation whose event failed changed the client: name %q, secret changed %v", after.Name, string(after.SecretHash) != string(before.SecretHash))
	}
	keysAfter, err := km.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keysAfter) != len(keysBefore) || string(km.JWKS()) != jwksBefore {
		t.Errorf("a key rotation whose event failed kept a key: %d keys stored (was %d), JWKS changed %v", len(keysAfter), len(keysBefore), string(km.JWKS()) != jwksBefore)
	}
	if got, want := events(), []string{"client_created app1"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}

	// Changes that fail write no event.
	for _, tc := range []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"create taken", http.MethodPost, "/admin/clients", app, http.StatusConflict},
		{"update invalid", http.MethodPut, "/admin/clients/app1", map[string]any{"redirect_uris": []string{"ftp://x"}}, http.StatusBadRequest},
		{"update missing", http.MethodPut, "/admin/clients/nobody", map[string]any{"redirect_uris": []string{"https://x.example/cb"}}, http.StatusNotFound},
		{"rotate missing", http.MethodPost, "/admin/clients/nobody/secret", "{}", http.StatusNotFound},
		{"delete missing", http.MethodDelete, "/admin/clients/nobody", nil, http.StatusNotFound},
	} {
		if code, body, _ := e.do(tc.method, tc.path, tc.body); code != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, code, body, tc.want)
		}
	}
	if got, want := events(), []string{"client_created app1"}; !slices.Equal(got, want) {
		t.Errorf("after failed changes, events %q, want %q", got, want)
	}

	// And with the trail writable again, each change has its event.
	code, body, _ := e.do(http.MethodPost, "/admin/keys/rotate", "{}")
	if code != http.StatusOK {
		t.Fatalf("rotate keys: %d %v", code, body)
	}
	var kids []string
	for _, k := range body["keys"].([]any) {
		kid := k.(map[string]any)["kid"].(string)
		kids = append(kids, kid)
		if !strings.Contains(string(km.JWKS()), kid) {
			t.Errorf("the manager does not publish the rotated key %s", kid)
		}
	}
	for _, req := range [][2]string{{http.MethodPost, "/admin/clients/app1/secret"}, {http.MethodDelete, "/admin/clients/app1"}} {
		if code, body, _ := e.do(req[0], req[1], "{}"); code >= 300 {
			t.Fatalf("%s %s: %d %v", req[0], req[1], code, body)
		}
	}
	want := []string{"client_created app1", "client_deleted app1", "client_secret_rotated app1"}
	for range kids {
		want = append(want, "key_rotated ")
	}
	if got := events(); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	evs, _, _ := st.Events(ctx, storage.EventQuery{Type: storage.EventKeyRotated})
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Details["kid"].(string))
	}
	slices.Sort(got)
	slices.Sort(kids)
	if len(kids) == 0 || !slices.Equal(got, kids) {
		t.Errorf("key_rotated events name %q, want the rotated keys %q", got, kids)
	}
}

var _ admin.KeyManager = (*keys.Manager)(nil)
