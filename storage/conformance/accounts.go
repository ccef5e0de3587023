package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ory/fosite"
	fositestorage "github.com/ory/fosite/storage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

var accountTests = []testCase{
	{"UserFields", testUserFields},
	{"LinkExistingOnly", testLinkExistingOnly},
	{"LinkDisabledUser", testLinkDisabledUser},
	{"LinkEvents", testLinkEvents},
	{"RecordLogin", testRecordLogin},
	{"RecordLoginInTransaction", testRecordLoginInTransaction},
	{"SearchUsers", testSearchUsers},
	{"SearchUsersPagingWhileCreating", testSearchUsersPagingWhileCreating},
	{"SetUserDisabled", testSetUserDisabled},
	{"EndUserSessions", testEndUserSessions},
	{"DeleteUser", testDeleteUser},
	{"UnlinkIdentity", testUnlinkIdentity},
	{"Events", testEvents},
	{"EventsInTransaction", testEventsInTransaction},
	{"ClientAndKeyEventsInTransaction", testClientAndKeyEventsInTransaction},
}

// linkIdentity is LinkIdentity with the result spread out.
func linkIdentity(ctx context.Context, s storage.Storage, req storage.LinkRequest) (storage.User, bool, error) {
	res, err := s.LinkIdentity(ctx, req)
	return res.User, res.Created, err
}

func eventTypes(evs []storage.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// allEvents returns every event of subject, newest first.
func allEvents(t *testing.T, s storage.Storage, subject string) []storage.Event {
	t.Helper()
	evs, next, err := s.Events(t.Context(), storage.EventQuery{Subject: subject, Limit: storage.MaxPageSize})
	require.NoError(t, err)
	require.Empty(t, next)
	return evs
}

func testUserFields(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(-time.Hour)
	u := storage.User{
		Subject: "sub-1", Name: "Alice", Picture: "https://img/a", PhoneNumber: "+8613800138000",
		ExternalID: "emp-1", Roles: []string{storage.RoleViewer, storage.RoleAdmin, storage.RoleViewer},
		CreatedAt: now, UpdatedAt: now,
	}
	require.NoError(t, s.CreateUser(ctx, u))
	got, err := s.User(ctx, "sub-1")
	require.NoError(t, err)
	assert.Equal(t, "Alice", got.Name)
	assert.Equal(t, "+8613800138000", got.PhoneNumber)
	assert.False(t, got.PhoneNumberVerified)
	assert.Equal(t, "emp-1", got.ExternalID)
	assert.Equal(t, []string{storage.RoleAdmin, storage.RoleViewer}, got.Roles, "roles sorted, no duplicates")
	assert.False(t, got.Disabled)
	assert.True(t, now.Equal(got.CreatedAt))
	assert.True(t, got.LastLoginAt.IsZero())

	assert.ErrorIs(t, s.CreateUser(ctx, u), storage.ErrAlreadyExists, "subject taken")
	assert.ErrorIs(t, s.CreateUser(ctx, storage.User{Subject: "sub-2", ExternalID: "emp-1"}), storage.ErrAlreadyExists, "external id taken")
	require.NoError(t, s.CreateUser(ctx, storage.User{Subject: "sub-2"}))
	require.NoError(t, s.CreateUser(ctx, storage.User{Subject: "sub-3"}), "no external id is not a duplicate")

	err = s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) {
		u.ExternalID = "emp-1"
		return u, nil
	})
	assert.ErrorIs(t, err, storage.ErrAlreadyExists, "external id held by another user")
	err = s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) {
		u.Disabled = true
		return u, nil
	})
	assert.Error(t, err, "disabled changes through SetUserDisabled")
	require.NoError(t, s.UpdateUser(ctx, "sub-1", func(u storage.User) (storage.User, error) {
		u.ExternalID, u.Roles, u.PhoneNumberVerified = "", nil, true
		return u, nil
	}))
	got, err = s.User(ctx, "sub-1")
	require.NoError(t, err)
	assert.Empty(t, got.ExternalID)
	assert.Empty(t, got.Roles)
	assert.True(t, got.PhoneNumberVerified)
	require.NoError(t, s.UpdateUser(ctx, "sub-2", func(u storage.User) (storage.User, error) {
		u.ExternalID = "emp-1"
		return u, nil
	}), "a freed external id can be taken")
}

func testLinkExistingOnly(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	const phone = "+8613800138000"
	req := storage.LinkRequest{AppID: "mini", OpenID: "o-alice", Kind: "miniprogram", Now: now}

	// Nobody to link to: no phone, or a phone nobody has.
	_, err := s.LinkIdentity(ctx, req)
	requireNotFound(t, err)
	withPhone := req
	withPhone.PhoneNumber = phone
	_, err = s.LinkIdentity(ctx, withPhone)
	requireNotFound(t, err)
	_, err = s.Identity(ctx, "mini", "o-alice")
	requireNotFound(t, err) // a refused link leaves no identity

	// Pre-provisioned with that (unverified) number: linked, and verified.
	require.NoError(t, s.CreateUser(ctx, storage.User{Subject: "alice", Name: "Alice", PhoneNumber: phone}))
	withPhone.UnionID = "union-alice"
	res, err := s.LinkIdentity(ctx, withPhone)
	require.NoError(t, err)
	assert.False(t, res.Created)
	assert.True(t, res.Linked)
	assert.Equal(t, "alice", res.User.Subject)
	assert.True(t, res.User.PhoneNumberVerified)
	assert.Equal(t, "union-alice", res.User.UnionID, "the unionid comes along")
	assert.Equal(t, []string{storage.EventIdentityLinked, storage.EventPhoneBound}, eventTypes(res.Events))
	id, err := s.Identity(ctx, "mini", "o-alice")
	require.NoError(t, err)
	assert.Equal(t, "alice", id.Subject)
	assert.Equal(t, "miniprogram", id.Kind)

	// The same person through another app of the platform: by unionid.
	res, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "web", OpenID: "w-alice", UnionID: "union-alice", Kind: "website", Now: now})
	require.NoError(t, err)
	assert.Equal(t, "alice", res.User.Subject)
	assert.True(t, res.Linked)

	// A second openid of the same app does not link by phone (one
	// identity per app and user).
	_, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "mini", OpenID: "o-other", PhoneNumber: phone, Now: now})
	requireNotFound(t, err)

	// Two enabled users with one number: ambiguous, nobody.
	require.NoError(t, s.CreateUser(ctx, storage.User{Subject: "bob-1", PhoneNumber: "+8613900000000"}))
	require.NoError(t, s.CreateUser(ctx, storage.User{Subject: "bob-2", PhoneNumber: "+8613900000000"}))
	_, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "mini", OpenID: "o-bob", PhoneNumber: "+8613900000000", Now: now})
	requireNotFound(t, err)
	// One of them disabled: the other is the one.
	require.NoError(t, s.SetUserDisabled(ctx, "bob-2", true))
	res, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "mini", OpenID: "o-bob", PhoneNumber: "+8613900000000", Now: now})
	require.NoError(t, err)
	assert.Equal(t, "bob-1", res.User.Subject)
}

func testLinkDisabledUser(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	_, _, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "a", OpenID: "o", UnionID: "u", NewSubject: "sub", Now: now})
	require.NoError(t, err)
	require.NoError(t, s.SetUserDisabled(ctx, "sub", true))

	res, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "a", OpenID: "o", Name: "New name", NewSubject: "other", Now: now})
	require.NoError(t, err)
	assert.True(t, res.User.Disabled)
	assert.Equal(t, "sub", res.User.Subject)
	assert.Empty(t, res.User.Name, "nothing changes for a disabled user")
	assert.Empty(t, res.Events)

	// Through the unionid: found, disabled, not linked.
	res, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "b", OpenID: "o2", UnionID: "u", NewSubject: "other", Now: now})
	require.NoError(t, err)
	assert.True(t, res.User.Disabled)
	assert.False(t, res.Linked)
	_, err = s.Identity(ctx, "b", "o2")
	requireNotFound(t, err)
}

func testLinkEvents(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	res, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "a", OpenID: "o", Kind: "website", NewSubject: "sub", PhoneNumber: "+8613800138000",
		ClientID: "web", IP: "192.0.2.1", Now: now})
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.Equal(t, []string{storage.EventUserCreated, storage.EventIdentityLinked, storage.EventPhoneBound}, eventTypes(res.Events))
	stored := allEvents(t, s, "sub")
	require.Len(t, stored, 3)
	for _, e := range stored {
		assert.Equal(t, "web", e.ClientID)
		assert.Equal(t, "192.0.2.1", e.IP)
		assert.True(t, now.Equal(e.Time))
		assert.NotEmpty(t, e.ID)
		assert.NotContains(t, fmt.Sprint(e.Details), "+8613800138000", "no personal data in events")
		assert.NotContains(t, fmt.Sprint(e.Details), "\"o\"")
	}
	// A returning login with nothing new records nothing.
	res, err = s.LinkIdentity(ctx, storage.LinkRequest{AppID: "a", OpenID: "o", NewSubject: "x", Now: now})
	require.NoError(t, err)
	assert.Empty(t, res.Events)
	assert.Len(t, allEvents(t, s, "sub"), 3)
}

func testRecordLogin(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	_, _, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "a", OpenID: "o", NewSubject: "sub", Now: now.Add(-time.Hour)})
	require.NoError(t, err)
	at := now.Add(-time.Minute)
	require.NoError(t, s.RecordLogin(ctx, storage.Login{Subject: "sub", AppID: "a", OpenID: "o", At: at, ClientID: "c", IP: "192.0.2.7",
		Details: map[string]any{"method": "test"}}))
	u, err := s.User(ctx, "sub")
	require.NoError(t, err)
	assert.True(t, at.Equal(u.LastLoginAt), "user last login %v, want %v", u.LastLoginAt, at)
	id, err := s.Identity(ctx, "a", "o")
	require.NoError(t, err)
	assert.True(t, at.Equal(id.LastLoginAt))
	evs := allEvents(t, s, "sub")
	require.NotEmpty(t, evs)
	assert.Equal(t, storage.EventLogin, evs[0].Type)
	assert.Equal(t, "c", evs[0].ClientID)
	assert.Equal(t, "192.0.2.7", evs[0].IP)
	assert.Equal(t, "test", evs[0].Details["method"])

	require.NoError(t, s.SetUserDisabled(ctx, "sub", true))
	err = s.RecordLogin(ctx, storage.Login{Subject: "sub", At: now})
	assert.ErrorIs(t, err, storage.ErrUserDisabled)
	err = s.RecordLogin(ctx, storage.Login{Subject: "sub", AppID: "a", OpenID: "o", At: now})
	assert.ErrorIs(t, err, storage.ErrUserDisabled)
	err = s.RecordLogin(ctx, storage.Login{Subject: "nobody", At: now})
	assert.ErrorIs(t, err, storage.ErrUserDisabled)
	u, err = s.User(ctx, "sub")
	require.NoError(t, err)
	assert.True(t, at.Equal(u.LastLoginAt), "a refused login changes nothing")
	id, err = s.Identity(ctx, "a", "o")
	require.NoError(t, err)
	assert.True(t, at.Equal(id.LastLoginAt), "a refused login changes nothing on the identity either")
}

// testRecordLoginInTransaction checks the Mini Program grant's write: the
// login in fosite's transaction with a token, committed together, and for
// a user disabled before the commit, neither.
func testRecordLoginInTransaction(t *testing.T, s storage.Storage) {
	tx, ok := s.(fositestorage.Transactional)
	if !ok {
		t.Skip("no transactions")
	}
	ctx := t.Context()
	c := createClient(t, s, "client")
	_, _, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "a", OpenID: "o", NewSubject: "sub", Now: ms(-time.Hour)})
	require.NoError(t, err)

	txCtx, err := tx.BeginTX(ctx)
	require.NoError(t, err)
	require.NoError(t, s.RecordLogin(txCtx, storage.Login{Subject: "sub", AppID: "a", OpenID: "o", At: ms(0)}))
	require.NoError(t, s.CreateAccessTokenSession(txCtx, "at-1", newRequest(c, "req-1", "sub", ms(time.Hour))))
	require.NoError(t, tx.Commit(txCtx))
	_, err = s.GetAccessTokenSession(ctx, "at-1", nil)
	require.NoError(t, err)
	assert.Len(t, allEvents(t, s, "sub"), 3, "user_created, identity_linked, login")

	require.NoError(t, s.SetUserDisabled(ctx, "sub", true))
	txCtx, err = tx.BeginTX(ctx)
	require.NoError(t, err)
	err = s.RecordLogin(txCtx, storage.Login{Subject: "sub", At: ms(0)})
	if err == nil {
		require.NoError(t, s.CreateAccessTokenSession(txCtx, "at-2", newRequest(c, "req-2", "sub", ms(time.Hour))))
		err = tx.Commit(txCtx)
	}
	assert.ErrorIs(t, err, storage.ErrUserDisabled)
	require.NoError(t, tx.Rollback(txCtx))
	if _, err := s.GetAccessTokenSession(ctx, "at-2", nil); !errors.Is(err, storage.ErrNotFound) {
		// The memory store applies writes at once; SQL stores queue
		// them: the token is there only if RecordLogin did not refuse
		// before it was written.
		t.Errorf("token of a disabled user committed: %v", err)
	}
	assert.Len(t, allEvents(t, s, "sub"), 3, "no login event for a refused login")
}

func testSearchUsers(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	for i, name := range []string{"Alice", "Albert", "Bob", "张三"} {
		sub := fmt.Sprintf("s%02d", i)
		_, _, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "app", OpenID: "open-" + sub, UnionID: "union-" + sub, NewSubject: sub, Name: name,
			PhoneNumber: fmt.Sprintf("+861380000000%d", i), Now: now})
		require.NoError(t, err)
	}
	require.NoError(t, s.CreateUser(ctx, storage.User{Subject: "x-1", ExternalID: "emp-9"}))
	subjects := func(q storage.UserQuery) []string {
		t.Helper()
		us, _, err := s.SearchUsers(ctx, q)
		require.NoError(t, err)
		out := []string{}
		for _, u := range us {
			out = append(out, u.Subject)
		}
		return out
	}
	assert.Equal(t, []string{"s00", "s01", "s02", "s03", "x-1"}, subjects(storage.UserQuery{}))
	assert.Equal(t, []string{"s02"}, subjects(storage.UserQuery{PhoneNumber: "+8613800000002"}))
	assert.Equal(t, []string{"s01"}, subjects(storage.UserQuery{OpenID: "open-s01"}))
	assert.Equal(t, []string{"s03"}, subjects(storage.UserQuery{UnionID: "union-s03"}))
	assert.Equal(t, []string{"x-1"}, subjects(storage.UserQuery{ExternalID: "emp-9"}))
	assert.Equal(t, []string{"s00", "s01"}, subjects(storage.UserQuery{Prefix: "Al"}))
	assert.Equal(t, []string{"s03"}, subjects(storage.UserQuery{Prefix: "张"}))
	assert.Equal(t, []string{"x-1"}, subjects(storage.UserQuery{Prefix: "x-"}), "subject prefix")
	assert.Equal(t, []string{}, subjects(storage.UserQuery{Prefix: "Al", PhoneNumber: "+8613800000002"}), "filters combine")
	assert.Equal(t, []string{}, subjects(storage.UserQuery{Prefix: "%"}), "no LIKE wildcards")
	assert.Equal(t, []string{}, subjects(storage.UserQuery{OpenID: "nobody"}))

	var all []string
	tok := ""
	for {
		us, next, err := s.SearchUsers(ctx, storage.UserQuery{Limit: 2, PageToken: tok})
		require.NoError(t, err)
		assert.LessOrEqual(t, len(us), 2)
		for _, u := range us {
			all = append(all, u.Subject)
		}
		if next == "" {
			break
		}
		tok = next
	}
	assert.Equal(t, []string{"s00", "s01", "s02", "s03", "x-1"}, all)
	_, _, err := s.SearchUsers(ctx, storage.UserQuery{PageToken: "not a token"})
	assert.ErrorIs(t, err, storage.ErrBadPageToken)
}

// testSearchUsersPagingWhileCreating walks 10,000 users page by page while
// users are being created between the pages, before and after the page
// boundary: every user that existed before the walk is seen exactly once,
// and no user twice.
func testSearchUsersPagingWhileCreating(t *testing.T, s storage.Storage) {
	if testing.Short() {
		t.Skip("10,000 users")
	}
	ctx := t.Context()
	const n = 10000
	now := ms(0)
	require.NoError(t, storage.InTx(ctx, s, func(ctx context.Context) error {
		for i := range n {
			if err := s.CreateUser(ctx, storage.User{Subject: fmt.Sprintf("u%05d", i*2), CreatedAt: now, UpdatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	}))
	seen := map[string]int{}
	tok := ""
	created := 0
	for pages := 0; ; pages++ {
		us, next, err := s.SearchUsers(ctx, storage.UserQuery{Limit: 250, PageToken: tok})
		require.NoError(t, err)
		for _, u := range us {
			seen[u.Subject]++
		}
		if next == "" {
			break
		}
		require.Less(t, pages, 100, "paging does not end")
		tok = next
		// New users between the existing ones: some behind the cursor,
		// some right after it, some far ahead.
		for _, i := range []int{pages * 97 % n, pages*250 + 250, pages*250 + 251, (pages*7919 + 5000) % n} {
			err := s.CreateUser(ctx, storage.User{Subject: fmt.Sprintf("u%05d", min(i, n-1)*2+1)})
			if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
				t.Fatalf("create during walk: %v", err)
			}
			created++
		}
	}
	for i := range n {
		sub := fmt.Sprintf("u%05d", i*2)
		require.Equal(t, 1, seen[sub], "user %s seen %d times", sub, seen[sub])
	}
	for sub, c := range seen {
		require.Equal(t, 1, c, "user %s seen %d times", sub, c)
	}
	require.Greater(t, len(seen), n, "some users created during the walk are seen")
	t.Logf("%d users created during the walk, %d seen in all", created, len(seen))
}

// userWithTokens creates a user with a browser session, an access token,
// a refresh token and an unused code, and returns the client.
func userWithTokens(t *testing.T, s storage.Storage, subject string) *storage.Client {
	t.Helper()
	ctx := t.Context()
	c := createClient(t, s, "client-"+subject)
	_, _, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "app", OpenID: "open-" + subject, UnionID: "union-" + subject, NewSubject: subject,
		Name: "Name " + subject, PhoneNumber: "+86139" + subject, Now: ms(-time.Hour)})
	require.NoError(t, err)
	exp := ms(time.Hour)
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at-"+subject, newRequest(c, "req-"+subject, subject, exp)))
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt-"+subject, "at-"+subject, newRequest(c, "req-"+subject, subject, exp)))
	require.NoError(t, s.CreateAuthorizeCodeSession(ctx, "code-"+subject, newRequest(c, "req-code-"+subject, subject, exp)))
	require.NoError(t, s.CreateBrowserSession(ctx, storage.BrowserSession{ID: "bs-" + subject, Subject: subject, AuthTime: ms(0), ExpiresAt: exp}))
	require.NoError(t, s.PutConsent(ctx, storage.Consent{Subject: subject, ClientID: c.ID, Scopes: []string{"openid"}, GrantedAt: ms(0)}))
	require.NoError(t, s.PutSessionKey(ctx, storage.SessionKey{Subject: subject, AppID: "app", OpenID: "open-" + subject, Ciphertext: []byte("sealed"), UpdatedAt: ms(0)}))
	return c
}

// assertSignedOut checks that subject's sessions and tokens are gone or
// inactive.
func assertSignedOut(t *testing.T, s storage.Storage, subject string) {
	t.Helper()
	ctx := t.Context()
	_, err := s.GetAccessTokenSession(ctx, "at-"+subject, nil)
	requireNotFound(t, err)
	_, err = s.GetRefreshTokenSession(ctx, "rt-"+subject, nil)
	assert.ErrorIs(t, err, fosite.ErrInactiveToken)
	_, err = s.GetAuthorizeCodeSession(ctx, "code-"+subject, nil)
	assert.ErrorIs(t, err, fosite.ErrInvalidatedAuthorizeCode)
	_, err = s.BrowserSession(ctx, "bs-"+subject)
	requireNotFound(t, err)
	bss, err := s.UserBrowserSessions(ctx, subject)
	require.NoError(t, err)
	assert.Empty(t, bss)
}

func assertSignedIn(t *testing.T, s storage.Storage, subject string) {
	t.Helper()
	ctx := t.Context()
	bss, err := s.UserBrowserSessions(ctx, subject)
	require.NoError(t, err)
	require.Len(t, bss, 1)
	assert.Empty(t, bss[0].ID, "a listed session does not give its ID")
	assert.Equal(t, subject, bss[0].Subject)
	_, err = s.GetAccessTokenSession(ctx, "at-"+subject, nil)
	require.NoError(t, err)
	_, err = s.GetRefreshTokenSession(ctx, "rt-"+subject, nil)
	require.NoError(t, err)
	_, err = s.BrowserSession(ctx, "bs-"+subject)
	require.NoError(t, err)
}

func testSetUserDisabled(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	userWithTokens(t, s, "1001")
	userWithTokens(t, s, "1002")
	require.NoError(t, s.SetUserDisabled(ctx, "1001", true))
	u, err := s.User(ctx, "1001")
	require.NoError(t, err)
	assert.True(t, u.Disabled)
	assertSignedOut(t, s, "1001")
	assertSignedIn(t, s, "1002")

	require.NoError(t, s.SetUserDisabled(ctx, "1001", false))
	u, err = s.User(ctx, "1001")
	require.NoError(t, err)
	assert.False(t, u.Disabled)
	requireNotFound(t, s.SetUserDisabled(ctx, "nobody", true))
}

func testEndUserSessions(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	userWithTokens(t, s, "1001")
	userWithTokens(t, s, "1002")
	require.NoError(t, s.EndUserSessions(ctx, "1001"))
	assertSignedOut(t, s, "1001")
	assertSignedIn(t, s, "1002")
	u, err := s.User(ctx, "1001")
	require.NoError(t, err)
	assert.False(t, u.Disabled)
	require.NoError(t, s.EndUserSessions(ctx, "nobody"))
}

func testDeleteUser(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := userWithTokens(t, s, "1001")
	userWithTokens(t, s, "1002")
	erased := personTraces(t, s, "1001")
	kept := personTraces(t, s, "1002")
	require.NoError(t, s.DeleteUser(ctx, "1001"))
	erased.assertGone(t, s, kept)
	_, err := s.User(ctx, "1001")
	requireNotFound(t, err)
	_, err = s.Identity(ctx, "app", "open-1001")
	requireNotFound(t, err)
	ids, err := s.Identities(ctx, "1001")
	require.NoError(t, err)
	assert.Empty(t, ids)
	_, err = s.SessionKey(ctx, "1001", "app")
	requireNotFound(t, err)
	_, err = s.Consent(ctx, "1001", c.ID)
	requireNotFound(t, err)
	for _, get := range []func() error{
		func() error { _, err := s.GetAccessTokenSession(ctx, "at-1001", nil); return err },
		func() error { _, err := s.GetRefreshTokenSession(ctx, "rt-1001", nil); return err },
		func() error { _, err := s.GetAuthorizeCodeSession(ctx, "code-1001", nil); return err },
		func() error { _, err := s.BrowserSession(ctx, "bs-1001"); return err },
	} {
		requireNotFound(t, get())
	}
	us, _, err := s.SearchUsers(ctx, storage.UserQuery{PhoneNumber: "+861391001"})
	require.NoError(t, err)
	assert.Empty(t, us)
	assertSignedIn(t, s, "1002")
	requireNotFound(t, s.DeleteUser(ctx, "1001"))

	// The same WeChat identity signing in again is a new user.
	res, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "app", OpenID: "open-1001", UnionID: "union-1001", NewSubject: "1001-new", Now: ms(0)})
	require.NoError(t, err)
	assert.True(t, res.Created)
	assert.Equal(t, "1001-new", res.User.Subject)
}

// traces are the rows besides tokens, sessions and consents that hold a
// person: pushes their official-account identity sent (one finished, one
// not), the kept answer of their last refresh, a rate limit named after
// them and an approved follow login.
type traces struct {
	subject        string
	deviceUserCode string
}

// personTraces gives subject (a user of userWithTokens) every trace, and
// checks that each is there.
func personTraces(t *testing.T, s storage.Storage, subject string) traces {
	t.Helper()
	ctx := t.Context()
	now := ms(0)
	_, _, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "oa", OpenID: "oa-open-" + subject, UnionID: "union-" + subject, Kind: "official", Now: now})
	require.NoError(t, err)
	for _, key := range []string{"scan-", "subscribe-"} {
		fresh, err := s.RecordPushEvent(ctx, storage.PushEvent{AppID: "oa", Key: key + subject, OpenID: "oa-open-" + subject,
			Data: []byte(`{"openid":"oa-open-` + subject + `"}`), ReceivedAt: now, ExpiresAt: ms(time.Hour)}, now)
		require.NoError(t, err)
		require.True(t, fresh)
	}
	require.NoError(t, s.FinishPushEvent(ctx, "oa", "subscribe-"+subject))
	require.NoError(t, s.PutRefreshSuccessor(ctx, storage.RefreshSuccessor{Signature: "rt-" + subject, SuccessorSignature: "rt2-" + subject,
		Response: []byte("sealed-answer-" + subject), ExpiresAt: ms(time.Hour)}))
	_, err = s.RefreshSuccessor(ctx, "rt-"+subject, now)
	require.NoError(t, err)
	ok, err := s.TakeRate(ctx, "device-verify/"+subject, 1, 1.0/3600, 1, now)
	require.NoError(t, err)
	require.True(t, ok)
	code := "FOLLOWX" + string(rune('A'+subject[len(subject)-1]%26))
	require.NoError(t, s.CreateDeviceAuth(ctx, storage.DeviceAuth{DeviceCode: "dc-" + subject, UserCode: code, Kind: "official", ClientID: "client-" + subject,
		Scopes: []string{"openid"}, Data: []byte("follow-login-of-" + subject), CreatedAt: now, ExpiresAt: ms(time.Hour), Interval: time.Second}))
	_, err = s.DecideDeviceAuth(ctx, code, storage.DeviceDecision{Approve: true, Subject: subject, AuthTime: now, AMR: []string{"wechat"}, Now: now})
	require.NoError(t, err)
	return traces{subject: subject, deviceUserCode: code}
}

// assertGone checks that none of tr's traces is left, and that those of
// kept are.
func (tr traces) assertGone(t *testing.T, s storage.Storage, kept traces) {
	t.Helper()
	ctx := t.Context()
	now := ms(0)
	due, err := s.ClaimPushEvents(ctx, now.Add(time.Second), now.Add(time.Minute), 100)
	require.NoError(t, err)
	var left []string
	for _, e := range due {
		left = append(left, e.OpenID)
	}
	assert.NotContains(t, left, "oa-open-"+tr.subject, "an erased person's push is left")
	assert.Contains(t, left, "oa-open-"+kept.subject, "another person's push went too")
	// A finished push is known by its key until it expires: gone, the
	// same key records afresh.
	fresh, err := s.RecordPushEvent(ctx, storage.PushEvent{AppID: "oa", Key: "subscribe-" + tr.subject, Data: []byte("{}"), ReceivedAt: now, ExpiresAt: ms(time.Hour)}, now)
	require.NoError(t, err)
	assert.True(t, fresh, "the erased person's finished push is left")
	_, err = s.RefreshSuccessor(ctx, "rt-"+tr.subject, now)
	requireNotFound(t, err)
	ok, err := s.TakeRate(ctx, "device-verify/"+tr.subject, 1, 1.0/3600, 1, now)
	require.NoError(t, err)
	assert.True(t, ok, "the rate limit named after the erased person is left")
	_, err = s.DeviceAuthByUserCode(ctx, tr.deviceUserCode)
	requireNotFound(t, err)

	_, err = s.RefreshSuccessor(ctx, "rt-"+kept.subject, now)
	assert.NoError(t, err, "another person's refresh answer went too")
	ok, err = s.TakeRate(ctx, "device-verify/"+kept.subject, 1, 1.0/3600, 1, now)
	require.NoError(t, err)
	assert.False(t, ok, "another person's rate limit went too")
	_, err = s.DeviceAuthByUserCode(ctx, kept.deviceUserCode)
	assert.NoError(t, err, "another person's follow login went too")
}

func testUnlinkIdentity(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	_, _, err := linkIdentity(ctx, s, storage.LinkRequest{AppID: "mini", OpenID: "o1", UnionID: "union", NewSubject: "sub", Now: now})
	require.NoError(t, err)
	_, _, err = linkIdentity(ctx, s, storage.LinkRequest{AppID: "web", OpenID: "o2", UnionID: "union", NewSubject: "x", Now: now})
	require.NoError(t, err)
	require.NoError(t, s.PutSessionKey(ctx, storage.SessionKey{Subject: "sub", AppID: "mini", OpenID: "o1", Ciphertext: []byte("k"), UpdatedAt: now}))
	// A push the identity sent goes with it; one of another app with the
	// same openid text stays.
	for _, app := range []string{"mini", "elsewhere"} {
		_, err := s.RecordPushEvent(ctx, storage.PushEvent{AppID: app, Key: "k", OpenID: "o1", Data: []byte("{}"), ReceivedAt: now, ExpiresAt: now.Add(time.Hour)}, now)
		require.NoError(t, err)
	}

	require.NoError(t, s.UnlinkIdentity(ctx, "sub", "mini"))
	requireNotFound(t, s.UnlinkIdentity(ctx, "sub", "mini"))
	due, err := s.ClaimPushEvents(ctx, now, now.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Len(t, due, 1, "the unlinked identity's push is left")
	assert.Equal(t, "elsewhere", due[0].AppID)
	_, err = s.Identity(ctx, "mini", "o1")
	requireNotFound(t, err)
	_, err = s.SessionKey(ctx, "sub", "mini")
	requireNotFound(t, err)
	u, err := s.User(ctx, "sub")
	require.NoError(t, err)
	assert.Equal(t, "union", u.UnionID, "another identity still carries the unionid")

	require.NoError(t, s.UnlinkIdentity(ctx, "sub", "web"))
	u, err = s.User(ctx, "sub")
	require.NoError(t, err)
	assert.Empty(t, u.UnionID, "no identity carries the unionid any more")
	// The unlinked identity signs in as a new user.
	res, err := s.LinkIdentity(ctx, storage.LinkRequest{AppID: "mini", OpenID: "o1", UnionID: "union", NewSubject: "sub-2", Now: now})
	require.NoError(t, err)
	assert.True(t, res.Created)
}

func testEvents(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	base := ms(-time.Hour)
	var evs []storage.Event
	for i := range 7 {
		e := storage.Event{Time: base.Add(time.Duration(i/2) * time.Minute), Type: storage.EventLogin, Subject: "sub-a", ClientID: "c1", IP: "192.0.2.1",
			Details: map[string]any{"n": float64(i)}}
		if i%3 == 0 {
			e.Subject, e.Type, e.ClientID = "sub-b", storage.EventUserUpdated, "c2"
		}
		evs = append(evs, e)
	}
	require.NoError(t, s.AppendEvents(ctx, evs...))

	all, next, err := s.Events(ctx, storage.EventQuery{})
	require.NoError(t, err)
	assert.Empty(t, next)
	require.Len(t, all, 7)
	for i := 1; i < len(all); i++ {
		assert.False(t, all[i].Time.After(all[i-1].Time), "newest first")
	}
	assert.Equal(t, float64(6), all[0].Details["n"])
	assert.True(t, base.Add(3*time.Minute).Equal(all[0].Time))

	count := func(q storage.EventQuery) int {
		t.Helper()
		evs, _, err := s.Events(ctx, q)
		require.NoError(t, err)
		return len(evs)
	}
	assert.Equal(t, 3, count(storage.EventQuery{Subject: "sub-b"}))
	assert.Equal(t, 4, count(storage.EventQuery{ClientID: "c1"}))
	assert.Equal(t, 3, count(storage.EventQuery{Type: storage.EventUserUpdated}))
	assert.Equal(t, 4, count(storage.EventQuery{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}))
	assert.Equal(t, 0, count(storage.EventQuery{Subject: "sub-b", Type: storage.EventLogin}))

	// Pages of two, with equal times split across pages.
	var walked []storage.Event
	tok := ""
	for {
		page, next, err := s.Events(ctx, storage.EventQuery{Limit: 2, PageToken: tok})
		require.NoError(t, err)
		walked = append(walked, page...)
		if next == "" {
			break
		}
		tok = next
	}
	require.Len(t, walked, 7)
	for i := range walked {
		assert.Equal(t, all[i].ID, walked[i].ID)
	}
	_, _, err = s.Events(ctx, storage.EventQuery{PageToken: "bogus"})
	assert.ErrorIs(t, err, storage.ErrBadPageToken)

	n, err := s.DeleteEventsBefore(ctx, base.Add(2*time.Minute))
	require.NoError(t, err)
	assert.EqualValues(t, 4, n)
	assert.Equal(t, 3, count(storage.EventQuery{}))
}

// testEventsInTransaction checks InTx: an event commits with its change,
// and a change that fails writes no event.
func testEventsInTransaction(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	require.NoError(t, s.CreateUser(ctx, storage.User{Subject: "sub"}))
	require.NoError(t, s.CreateUser(ctx, storage.User{Subject: "other", ExternalID: "taken"}))

	ok := storage.Event{Type: storage.EventUserUpdated, Subject: "sub", Details: map[string]any{"fields": []any{"name"}}}
	require.NoError(t, storage.InTx(ctx, s, func(ctx context.Context) error {
		if err := s.AppendEvents(ctx, ok); err != nil {
			return err
		}
		return s.UpdateUser(ctx, "sub", func(u storage.User) (storage.User, error) {
			u.Name = "New"
			return u, nil
		})
	}))
	evs := allEvents(t, s, "sub")
	require.Len(t, evs, 1)
	assert.Equal(t, []any{"name"}, evs[0].Details["fields"])

	// The event first, then a change that fails: neither is kept.
	err := storage.InTx(ctx, s, func(ctx context.Context) error {
		if err := s.AppendEvents(ctx, storage.Event{Type: storage.EventUserUpdated, Subject: "sub"}); err != nil {
			return err
		}
		return s.UpdateUser(ctx, "sub", func(u storage.User) (storage.User, error) {
			u.ExternalID = "taken"
			return u, nil
		})
	})
	require.ErrorIs(t, err, storage.ErrAlreadyExists)
	assert.Len(t, allEvents(t, s, "sub"), 1, "a failed change writes no event")
	u, err := s.User(ctx, "sub")
	require.NoError(t, err)
	assert.Empty(t, u.ExternalID)

	// A change of a user that does not exist: no event either.
	err = storage.InTx(ctx, s, func(ctx context.Context) error {
		if err := s.DeleteUser(ctx, "nobody"); err != nil {
			return err
		}
		return s.AppendEvents(ctx, storage.Event{Type: storage.EventUserDeleted, Subject: "nobody"})
	})
	requireNotFound(t, err)
	assert.Empty(t, allEvents(t, s, "nobody"))
}

// testClientAndKeyEventsInTransaction checks InTx for the changes of
// clients and signing keys and their events (the admin API's): an event
// commits with its change, a change that fails writes no event, and, on a
// backend with transactions, an event that fails to be written undoes its
// change.
func testClientAndKeyEventsInTransaction(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	clientEvents := func(id string) []storage.Event {
		t.Helper()
		evs, _, err := s.Events(ctx, storage.EventQuery{ClientID: id, Limit: storage.MaxPageSize})
		require.NoError(t, err)
		return evs
	}
	withEvent := func(change func(ctx context.Context) error, e storage.Event) error {
		return storage.InTx(ctx, s, func(ctx context.Context) error {
			if err := change(ctx); err != nil {
				return err
			}
			return s.AppendEvents(ctx, e)
		})
	}
	created := storage.Event{ID: "ev-created", Type: storage.EventClientCreated, ClientID: "c1"}
	require.NoError(t, withEvent(func(ctx context.Context) error {
		return s.CreateClient(ctx, storage.Client{ID: "c1", Name: "One"})
	}, created))
	require.Len(t, clientEvents("c1"), 1)

	// Changes that fail: no event.
	err := withEvent(func(ctx context.Context) error { return s.CreateClient(ctx, storage.Client{ID: "c1"}) },
		storage.Event{Type: storage.EventClientCreated, ClientID: "c1"})
	require.ErrorIs(t, err, storage.ErrAlreadyExists)
	err = withEvent(func(ctx context.Context) error {
		return s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
			return c, errors.New("invalid metadata")
		})
	}, storage.Event{Type: storage.EventClientUpdated, ClientID: "c1"})
	require.Error(t, err)
	assert.Len(t, clientEvents("c1"), 1, "a failed change writes no event")
	err = withEvent(func(ctx context.Context) error {
		return s.UpdateClient(ctx, "nobody", func(c storage.Client) (storage.Client, error) { return c, nil })
	}, storage.Event{Type: storage.EventClientSecretRotated, ClientID: "nobody"})
	requireNotFound(t, err)
	err = withEvent(func(ctx context.Context) error { return s.DeleteClient(ctx, "nobody") },
		storage.Event{Type: storage.EventClientDeleted, ClientID: "nobody"})
	requireNotFound(t, err)
	assert.Empty(t, clientEvents("nobody"))

	if _, ok := s.(fositestorage.Transactional); !ok {
		t.Log("no transactions: a change is applied as it is made, its events once it has succeeded (storage.InTx)")
		return
	}
	// Events that fail (their ID is taken): the change is undone.
	dup := func(typ, clientID string) storage.Event {
		return storage.Event{ID: created.ID, Type: typ, ClientID: clientID}
	}
	err = withEvent(func(ctx context.Context) error { return s.CreateClient(ctx, storage.Client{ID: "c2"}) },
		dup(storage.EventClientCreated, "c2"))
	require.Error(t, err)
	_, err = s.Client(ctx, "c2")
	requireNotFound(t, err)
	err = withEvent(func(ctx context.Context) error {
		return s.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) {
			c.Name, c.SecretHash = "Renamed", []byte("new-hash")
			return c, nil
		})
	}, dup(storage.EventClientSecretRotated, "c1"))
	require.Error(t, err)
	c, err := s.Client(ctx, "c1")
	require.NoError(t, err)
	assert.Equal(t, "One", c.Name)
	assert.Empty(t, c.SecretHash)
	fc, err := s.GetClient(ctx, "c1") // the cache holds no change that was undone
	require.NoError(t, err)
	assert.Equal(t, "One", fc.(*storage.Client).Name)
	err = withEvent(func(ctx context.Context) error { return s.DeleteClient(ctx, "c1") }, dup(storage.EventClientDeleted, "c1"))
	require.Error(t, err)
	_, err = s.Client(ctx, "c1")
	require.NoError(t, err, "a delete whose event failed is undone")
	t0 := time.Now().UTC().Truncate(time.Second)
	err = withEvent(func(ctx context.Context) error {
		return s.CreateSigningKey(ctx, storage.SigningKey{KID: "k1", Algorithm: "ES256", Private: []byte("enc"), Public: []byte(`{"kty":"EC"}`), CreatedAt: t0, ActivatesAt: t0})
	}, dup(storage.EventKeyRotated, ""))
	require.Error(t, err)
	ks, err := s.SigningKeys(ctx)
	require.NoError(t, err)
	assert.Empty(t, ks, "a key whose event failed is not kept")
	assert.Len(t, clientEvents("c1"), 1)
}
