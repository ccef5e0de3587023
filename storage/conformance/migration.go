package conformance

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ory/fosite/handler/openid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// SchemaBeforeUsers is the last schema version before users and accounts
// (migration 00008).
const SchemaBeforeUsers = 7

// OldUsers is SQL (for SQLite and PostgreSQL alike) that writes users and
// identities the way wxoidc did before users and accounts
// (SchemaBeforeUsers): a web user with a 32-hex-character subject and a phone number
// from WeChat, and a Mini Program user with a 22-character one.
const OldUsers = `INSERT INTO users (subject, union_id, name, picture, phone_number, version, created_at, updated_at) VALUES
 ('0123456789abcdef0123456789abcdef', 'union-web', 'Old Web', 'https://img/w', '+8613800138000', 3, 1700000000000000, 1700000000000000),
 ('AbCdEfGhIjKlMnOpQrStUv', NULL, '', '', '', 1, 1700000000000000, 1700000000000000);
INSERT INTO identities (app_id, open_id, union_id, subject, created_at) VALUES
 ('web-app', 'open-web', 'union-web', '0123456789abcdef0123456789abcdef', 1700000000000000),
 ('mini-app', 'open-mini', NULL, 'AbCdEfGhIjKlMnOpQrStUv', 1700000000000000);`

// TestMigrationToUsers checks that the latest migrations keep a database
// of SchemaBeforeUsers working: users keep their subjects and profiles, identities
// still sign them in, their tokens and session keys stay valid. old is a
// store on a database migrated only up to SchemaBeforeUsers, into which
// exec writes OldUsers; migrate applies the remaining migrations.
func TestMigrationToUsers(t *testing.T, old storage.Storage, exec func(query string) error, migrate func() error) {
	ctx := t.Context()
	require.NoError(t, exec(OldUsers))
	// Tokens, session keys and sessions as the old schema held them
	// (those tables do not change).
	c := createClient(t, old, "old-client")
	const web, mini = "0123456789abcdef0123456789abcdef", "AbCdEfGhIjKlMnOpQrStUv"
	req := newRequest(c, "req-old", mini, ms(time.Hour))
	require.NoError(t, old.CreateRefreshTokenSession(ctx, "rt-old", "at-old", req))
	require.NoError(t, old.CreateAccessTokenSession(ctx, "at-old", req))
	require.NoError(t, old.PutSessionKey(ctx, storage.SessionKey{Subject: mini, AppID: "mini-app", OpenID: "open-mini", Ciphertext: []byte("sealed"), UpdatedAt: ms(0)}))
	// A browser session as that schema held it (no amr column yet).
	bsKey := sha256.Sum256([]byte("bs-old"))
	require.NoError(t, exec(fmt.Sprintf("INSERT INTO browser_sessions (id_hash, subject, auth_time, expires_at) VALUES ('%x', '%s', %d, %d)",
		bsKey, web, ms(0).UnixMicro(), ms(time.Hour).UnixMicro())))
	// Pushes as that schema held them: the sender only in the data.
	require.NoError(t, exec(fmt.Sprintf(`INSERT INTO push_events (app_id, event_key, data, received_at, claimed_until, done, expires_at) VALUES
 ('web-app', 'old-push', '{"openid":"open-web","create_time":1700000000,"event":"subscribe"}', %[1]d, 0, FALSE, %[2]d),
 ('web-app', 'odd-push', 'not json', %[1]d, 0, FALSE, %[2]d)`, ms(0).UnixMicro(), ms(time.Hour).UnixMicro())))

	require.NoError(t, migrate())
	s := old
	// The user count (migration 00017) starts from the users there were.
	n, err := s.CountUsers(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, n, "users counted by the migration")

	u, err := s.User(ctx, web)
	require.NoError(t, err)
	assert.Equal(t, "Old Web", u.Name)
	assert.Equal(t, "+8613800138000", u.PhoneNumber)
	assert.True(t, u.PhoneNumberVerified, "a number stored before came from WeChat")
	assert.False(t, u.Disabled)
	assert.Empty(t, u.Roles)
	assert.Empty(t, u.ExternalID)
	assert.True(t, u.LastLoginAt.IsZero())

	// Both sign in again as themselves, by openid and by unionid.
	res, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "mini-app", OpenID: "open-mini", Kind: "miniprogram", NewSubject: "new", Now: ms(0)})
	require.NoError(t, err)
	assert.Equal(t, mini, res.User.Subject)
	assert.False(t, res.Created)
	res, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "official-app", OpenID: "open-oa", UnionID: "union-web", Kind: "official", NewSubject: "new", Now: ms(0)})
	require.NoError(t, err)
	assert.Equal(t, web, res.User.Subject)
	assert.True(t, res.Linked)
	at := ms(0)
	require.NoError(t, s.RecordLogin(ctx, storage.Login{Subject: mini, AppID: "mini-app", OpenID: "open-mini", At: at}))
	id, err := s.Identity(ctx, "mini-app", "open-mini")
	require.NoError(t, err)
	assert.Equal(t, "miniprogram", id.Kind, "an old identity learns its kind")
	assert.True(t, at.Equal(id.LastLoginAt))

	_, err = s.GetRefreshTokenSession(ctx, "rt-old", openid.NewDefaultSession())
	require.NoError(t, err)
	_, err = s.GetAccessTokenSession(ctx, "at-old", openid.NewDefaultSession())
	require.NoError(t, err)
	_, err = s.SessionKey(ctx, mini, "mini-app")
	require.NoError(t, err)
	_, err = s.BrowserSession(ctx, "bs-old")
	require.NoError(t, err)

	// The new features work on old users.
	us, _, err := s.SearchUsers(ctx, storage.UserQuery{PhoneNumber: "+8613800138000"})
	require.NoError(t, err)
	require.Len(t, us, 1)
	assert.Equal(t, web, us[0].Subject)
	require.NoError(t, storage.InTx(ctx, s, func(ctx context.Context) error {
		if err := s.SetUserDisabled(ctx, mini, true); err != nil {
			return err
		}
		return s.AppendEvents(ctx, storage.Event{Type: storage.EventUserDisabled, Subject: mini})
	}))
	_, err = s.GetAccessTokenSession(ctx, "at-old", openid.NewDefaultSession())
	requireNotFound(t, err)

	// An old push knows its sender: erasing the user erases it.
	require.NoError(t, s.DeleteUser(ctx, web))
	due, err := s.ClaimPushEvents(ctx, ms(time.Second), ms(time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, due, 1, "the erased user's old push is left")
	assert.Equal(t, "odd-push", due[0].Key)
}

// TestErasureLeavesNothing erases a user with everything a user can have
// (identities, session key, tokens, code, consent, browser session and
// the clients it signed in to, official-account pushes, the kept answer
// of a refresh, a rate limit, a follow login, events) and checks, in dump
// (every row of every table, as text, one "table: values" line a row),
// that before the erasure each of those tables holds a row of the person
// and afterwards none does, and that none of the person's phone number,
// name, picture, openid, unionid or session key is left anywhere, while
// another user's data is. Only events, the back-channel logouts the
// erasure queues (both with the pseudonymous sub) and the clients
// (client-7001 is a client's id) may still say 7001.
func TestErasureLeavesNothing(t *testing.T, s storage.Storage, dump func() (string, error)) {
	ctx := t.Context()
	userWithTokens(t, s, "7001")
	userWithTokens(t, s, "7002")
	personTraces(t, s, "7001")
	personTraces(t, s, "7002")
	for _, sub := range []string{"7001", "7002"} {
		require.NoError(t, s.AddSessionClient(ctx, "sid-"+sub, sub, "client-"+sub, ms(time.Hour)))
	}
	require.NoError(t, s.PutSessionKey(ctx, storage.SessionKey{Subject: "7001", AppID: "app2", OpenID: "open2-7001", Ciphertext: []byte("sealed-key-of-7001"), UpdatedAt: ms(0)}))
	require.NoError(t, s.RecordLogin(ctx, storage.Login{Subject: "7001", AppID: "app", OpenID: "open-7001", At: ms(0), ClientID: "client-7001", IP: "192.0.2.70"}))
	require.NoError(t, s.UpdateUser(ctx, "7001", func(u storage.User) (storage.User, error) {
		u.Picture, u.ExternalID = "https://img.example/pic-7001.png", "ext-7001"
		return u, nil
	}))
	before, err := dump()
	require.NoError(t, err)
	held := tablesNaming(before, "7001")
	for _, table := range []string{"users", "identities", "wechat_session_keys", "consents", "browser_sessions", "session_clients",
		"oauth2_access", "oauth2_refresh", "oauth2_code", "push_events", "refresh_successors", "rate_limits", "device_auths"} {
		assert.True(t, held[table], "before the erasure %s holds no row of the person: the test does not reach it", table)
	}
	require.NoError(t, storage.InTx(ctx, s, func(ctx context.Context) error {
		if err := s.DeleteUser(ctx, "7001"); err != nil {
			return err
		}
		return s.AppendEvents(ctx, storage.Event{Type: storage.EventUserDeleted, Subject: "7001"})
	}))
	all, err := dump()
	require.NoError(t, err)
	for table := range tablesNaming(all, "7001") {
		switch table {
		case "events", "logout_jobs", "clients":
		default:
			assert.Fail(t, "erased person left in a table", "%s still has a row naming 7001", table)
		}
	}
	for _, personal := range []string{"+861397001", "Name 7001", "pic-7001", "open-7001", "open2-7001", "union-7001", "sealed-key-of-7001", "ext-7001",
		"oa-open-7001", "sealed-answer-7001", "follow-login-of-7001"} {
		assert.NotContains(t, all, personal, "erased data left in the database")
	}
	for _, kept := range []string{"+861397002", "open-7002", "union-7002"} {
		assert.Contains(t, all, kept, "the dump does not see another user's data")
	}
	assert.Contains(t, all, "7001", "events keep the pseudonymous sub")
	for _, table := range []string{"push_events", "refresh_successors", "rate_limits", "device_auths"} {
		assert.True(t, tablesNaming(all, "7002")[table], "the erasure took another user's rows of %s", table)
	}
}

// tablesNaming returns the tables of dump (one "table: values" line a
// row) that have a row containing s.
func tablesNaming(dump, s string) map[string]bool {
	out := map[string]bool{}
	for _, line := range strings.Split(dump, "\n") {
		if table, row, ok := strings.Cut(line, ":"); ok && strings.Contains(row, s) {
			out[table] = true
		}
	}
	return out
}
