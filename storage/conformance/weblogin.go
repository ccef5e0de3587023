package conformance

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxoidc/wxoidc/storage"
)

// webLoginTests are the contract tests of LoginStateStore,
// BrowserSessionStore and ConsentStore; RunTests includes them.
var webLoginTests = []testCase{
	{"LoginStates", testLoginStates},
	{"AdmitLoginState", testAdmitLoginState},
	{"AdvanceLoginState", testAdvanceLoginState},
	{"BrowserSessions", testBrowserSessions},
	{"BrowserSessionUser", testBrowserSessionUser},
	{"Consents", testConsents},
	{"WithdrawnConsentRevokesTokens", testWithdrawnConsentRevokesTokens},
	{"DeleteExpiredWebLogin", testDeleteExpiredWebLogin},
}

// webLoginConcurrencyTests are RunConcurrencyTests' web-login cases.
var webLoginConcurrencyTests = []testCase{
	{"ConsumeLoginState", testConcurrentConsumeLoginState},
	{"AdvanceLoginState", testConcurrentAdvanceLoginState},
}

func testLoginStates(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	data := []byte(`{"params":"client_id=c1"}`)
	require.NoError(t, s.CreateLoginState(ctx, "state-1", data, ms(time.Minute)))
	assert.ErrorIs(t, s.CreateLoginState(ctx, "state-1", data, ms(time.Minute)), storage.ErrAlreadyExists)

	got, err := s.ConsumeLoginState(ctx, "state-1")
	require.NoError(t, err)
	assert.Equal(t, data, got)
	// Single use.
	_, err = s.ConsumeLoginState(ctx, "state-1")
	requireNotFound(t, err)
	_, err = s.ConsumeLoginState(ctx, "unknown")
	requireNotFound(t, err)

	// Expired states are refused.
	require.NoError(t, s.CreateLoginState(ctx, "state-old", data, ms(-time.Second)))
	_, err = s.ConsumeLoginState(ctx, "state-old")
	requireNotFound(t, err)
}

// testAdmitLoginState: a login state is stored only if every limit admits
// it; a refusal keeps what the limits before it took and leaves the limits
// after it alone.
func testAdmitLoginState(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := ms(0)
	data := []byte(`{"params":"client_id=c1"}`)
	ip := storage.RateTake{Name: "admit/ip", Rate: 1.0 / 60, Burst: 3}
	browser := storage.RateTake{Name: "admit/browser", Rate: 1.0 / 60, Burst: 1}
	ok, err := s.AdmitLoginState(ctx, "admit-1", data, ms(time.Minute), []storage.RateTake{ip, browser}, now)
	require.NoError(t, err)
	require.True(t, ok)
	got, err := s.ConsumeLoginState(ctx, "admit-1")
	require.NoError(t, err)
	assert.Equal(t, data, got)

	// The browser's burst of 1 is spent: refused and nothing stored, but
	// the address's limit was taken.
	ok, err = s.AdmitLoginState(ctx, "admit-2", data, ms(time.Minute), []storage.RateTake{ip, browser}, now)
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = s.ConsumeLoginState(ctx, "admit-2")
	requireNotFound(t, err)
	ok, err = s.TakeRate(ctx, ip.Name, 1, ip.Rate, ip.Burst, now)
	require.NoError(t, err)
	assert.True(t, ok, "the third of the address's burst of 3")
	ok, err = s.TakeRate(ctx, ip.Name, 1, ip.Rate, ip.Burst, now)
	require.NoError(t, err)
	assert.False(t, ok, "the address took 2 admissions and 1 TakeRate")

	// Refused by the first limit: the second is not asked.
	other := storage.RateTake{Name: "admit/other", Rate: 1.0 / 60, Burst: 1}
	ok, err = s.AdmitLoginState(ctx, "admit-3", data, ms(time.Minute), []storage.RateTake{ip, other}, now)
	require.NoError(t, err)
	assert.False(t, ok)
	ok, err = s.TakeRate(ctx, other.Name, 1, other.Rate, other.Burst, now)
	require.NoError(t, err)
	assert.True(t, ok, "a limit after the refusing one was taken")

	// No limits: stored; a cap of 0 never admits.
	ok, err = s.AdmitLoginState(ctx, "admit-4", data, ms(time.Minute), nil, now)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = s.AdmitLoginState(ctx, "admit-5", data, ms(time.Minute), []storage.RateTake{{Name: "admit/zero", Rate: 0, Burst: 0}}, now)
	require.NoError(t, err)
	assert.False(t, ok)
	_, err = s.ConsumeLoginState(ctx, "admit-5")
	requireNotFound(t, err)

	// A taken ID.
	_, err = s.AdmitLoginState(ctx, "admit-4", data, ms(time.Minute), []storage.RateTake{{Name: "admit/fresh", Rate: 1, Burst: 5}}, now)
	assert.ErrorIs(t, err, storage.ErrAlreadyExists)
}

// testAdvanceLoginState: the consumed state comes back unchanged, and the
// next one holds its data with the last byte replaced by the tail.
func testAdvanceLoginState(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	data := []byte(`{"step":"login","params":"client_id=c1"}`)
	require.NoError(t, s.CreateLoginState(ctx, "adv-1", data, ms(time.Minute)))
	got, err := s.AdvanceLoginState(ctx, "adv-1", "adv-2", []byte(`,"step":"wechat"}`), ms(2*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, data, got)
	_, err = s.ConsumeLoginState(ctx, "adv-1")
	requireNotFound(t, err)
	got, err = s.ConsumeLoginState(ctx, "adv-2")
	require.NoError(t, err)
	assert.Equal(t, `{"step":"login","params":"client_id=c1","step":"wechat"}`, string(got))

	// Unknown, consumed and expired states are not found, and store
	// nothing.
	_, err = s.AdvanceLoginState(ctx, "adv-1", "adv-3", []byte("}"), ms(time.Minute))
	requireNotFound(t, err)
	require.NoError(t, s.CreateLoginState(ctx, "adv-old", data, ms(-time.Second)))
	_, err = s.AdvanceLoginState(ctx, "adv-old", "adv-4", []byte("}"), ms(time.Minute))
	requireNotFound(t, err)
	for _, id := range []string{"adv-3", "adv-4"} {
		_, err = s.ConsumeLoginState(ctx, id)
		requireNotFound(t, err)
	}

	// A taken new ID: the old state is not consumed.
	require.NoError(t, s.CreateLoginState(ctx, "adv-5", data, ms(time.Minute)))
	require.NoError(t, s.CreateLoginState(ctx, "adv-6", data, ms(time.Minute)))
	_, err = s.AdvanceLoginState(ctx, "adv-5", "adv-6", []byte("}"), ms(time.Minute))
	assert.ErrorIs(t, err, storage.ErrAlreadyExists)
	_, err = s.ConsumeLoginState(ctx, "adv-5")
	require.NoError(t, err)
}

func testBrowserSessionUser(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := storage.User{Subject: "sess-user", Name: "Alice", CreatedAt: ms(-time.Hour), UpdatedAt: ms(-time.Hour)}
	require.NoError(t, s.CreateUser(ctx, u))
	bs := storage.BrowserSession{ID: "sess-u1", Subject: u.Subject, AuthTime: ms(-time.Minute), ExpiresAt: ms(time.Hour), AMR: []string{"wechat"}}
	require.NoError(t, s.CreateBrowserSession(ctx, bs))
	gotBS, gotU, err := s.BrowserSessionUser(ctx, "sess-u1")
	require.NoError(t, err)
	want, err := s.BrowserSession(ctx, "sess-u1")
	require.NoError(t, err)
	assert.Equal(t, want, gotBS)
	wantU, err := s.User(ctx, u.Subject)
	require.NoError(t, err)
	assert.Equal(t, wantU, gotU)

	_, _, err = s.BrowserSessionUser(ctx, "sess-unknown")
	requireNotFound(t, err)
	require.NoError(t, s.CreateBrowserSession(ctx, storage.BrowserSession{ID: "sess-u2", Subject: u.Subject, AuthTime: ms(-time.Hour), ExpiresAt: ms(-time.Minute)}))
	_, _, err = s.BrowserSessionUser(ctx, "sess-u2")
	requireNotFound(t, err)
	require.NoError(t, s.CreateBrowserSession(ctx, storage.BrowserSession{ID: "sess-u3", Subject: "nobody", AuthTime: ms(-time.Minute), ExpiresAt: ms(time.Hour)}))
	_, _, err = s.BrowserSessionUser(ctx, "sess-u3")
	requireNotFound(t, err)
}

func testBrowserSessions(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	bs := storage.BrowserSession{ID: "sess-1", Subject: "alice", AuthTime: ms(-time.Minute), ExpiresAt: ms(time.Hour), AMR: []string{"wechat", "miniprogram"}}
	require.NoError(t, s.CreateBrowserSession(ctx, bs))
	assert.ErrorIs(t, s.CreateBrowserSession(ctx, bs), storage.ErrAlreadyExists)

	got, err := s.BrowserSession(ctx, "sess-1")
	require.NoError(t, err)
	assert.Equal(t, bs.ID, got.ID)
	assert.Equal(t, bs.Subject, got.Subject)
	assert.True(t, bs.AuthTime.Equal(got.AuthTime), "auth_time %v, want %v", got.AuthTime, bs.AuthTime)
	assert.True(t, bs.ExpiresAt.Equal(got.ExpiresAt), "expiry %v, want %v", got.ExpiresAt, bs.ExpiresAt)
	assert.Equal(t, bs.AMR, got.AMR)

	_, err = s.BrowserSession(ctx, "sess-2")
	requireNotFound(t, err)

	require.NoError(t, s.DeleteBrowserSession(ctx, "sess-1"))
	_, err = s.BrowserSession(ctx, "sess-1")
	requireNotFound(t, err)
	require.NoError(t, s.DeleteBrowserSession(ctx, "sess-1"), "deleting twice is not an error")

	require.NoError(t, s.CreateBrowserSession(ctx, storage.BrowserSession{ID: "sess-old", Subject: "alice", AuthTime: ms(-2 * time.Hour), ExpiresAt: ms(-time.Hour)}))
	_, err = s.BrowserSession(ctx, "sess-old")
	requireNotFound(t, err)
}

func testConsents(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.Consent(ctx, "alice", "c1")
	requireNotFound(t, err)
	list, err := s.Consents(ctx, "alice")
	require.NoError(t, err)
	assert.Empty(t, list)

	c := storage.Consent{Subject: "alice", ClientID: "c2", Scopes: []string{"openid", "profile"}, GrantedAt: ms(0)}
	require.NoError(t, s.PutConsent(ctx, c))
	require.NoError(t, s.PutConsent(ctx, storage.Consent{Subject: "alice", ClientID: "c1", Scopes: []string{"openid"}, GrantedAt: ms(0)}))
	require.NoError(t, s.PutConsent(ctx, storage.Consent{Subject: "bob", ClientID: "c1", Scopes: []string{"openid"}, GrantedAt: ms(0)}))
	got, err := s.Consent(ctx, "alice", "c2")
	require.NoError(t, err)
	assert.Equal(t, c.Scopes, got.Scopes)
	assert.True(t, c.GrantedAt.Equal(got.GrantedAt))

	// Put replaces.
	c.Scopes = []string{"openid", "phone", "profile"}
	c.GrantedAt = ms(time.Minute)
	require.NoError(t, s.PutConsent(ctx, c))
	got, err = s.Consent(ctx, "alice", "c2")
	require.NoError(t, err)
	assert.Equal(t, c.Scopes, got.Scopes)
	assert.True(t, c.GrantedAt.Equal(got.GrantedAt))

	list, err = s.Consents(ctx, "alice")
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, "c1", list[0].ClientID)
	assert.Equal(t, "c2", list[1].ClientID)
	assert.Equal(t, c.Scopes, list[1].Scopes)

	require.NoError(t, s.DeleteConsent(ctx, "alice", "c2"))
	_, err = s.Consent(ctx, "alice", "c2")
	requireNotFound(t, err)
	require.NoError(t, s.DeleteConsent(ctx, "alice", "c2"), "deleting twice is not an error")
	_, err = s.Consent(ctx, "bob", "c1")
	require.NoError(t, err, "withdrawing alice's consent left bob's")
}

func testWithdrawnConsentRevokesTokens(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c1, c2 := createClient(t, s, "c1"), createClient(t, s, "c2")
	exp := ms(time.Hour)
	require.NoError(t, s.PutConsent(ctx, storage.Consent{Subject: "alice", ClientID: "c1", Scopes: []string{"openid"}, GrantedAt: ms(0)}))
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at-alice-c1", newRequest(c1, "r1", "alice", exp)))
	require.NoError(t, s.CreateRefreshTokenSession(ctx, "rt-alice-c1", "at-alice-c1", newRequest(c1, "r1", "alice", exp)))
	require.NoError(t, s.CreateAuthorizeCodeSession(ctx, "code-alice-c1", newRequest(c1, "r2", "alice", exp)))
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at-alice-c2", newRequest(c2, "r3", "alice", exp)))
	require.NoError(t, s.CreateAccessTokenSession(ctx, "at-bob-c1", newRequest(c1, "r4", "bob", exp)))

	require.NoError(t, s.DeleteConsent(ctx, "alice", "c1"))
	_, err := s.GetAccessTokenSession(ctx, "at-alice-c1", new(openid.DefaultSession))
	requireNotFound(t, err)
	req, err := s.GetRefreshTokenSession(ctx, "rt-alice-c1", new(openid.DefaultSession))
	require.ErrorIs(t, err, fosite.ErrInactiveToken)
	require.NotNil(t, req)
	_, err = s.GetAuthorizeCodeSession(ctx, "code-alice-c1", new(openid.DefaultSession))
	require.ErrorIs(t, err, fosite.ErrInvalidatedAuthorizeCode)
	_, err = s.GetAccessTokenSession(ctx, "at-alice-c2", new(openid.DefaultSession))
	require.NoError(t, err, "another client's token was revoked")
	_, err = s.GetAccessTokenSession(ctx, "at-bob-c1", new(openid.DefaultSession))
	require.NoError(t, err, "another user's token was revoked")
}

func testDeleteExpiredWebLogin(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	require.NoError(t, s.CreateLoginState(ctx, "state-dead", []byte("x"), ms(-time.Minute)))
	require.NoError(t, s.CreateLoginState(ctx, "state-live", []byte("x"), ms(time.Hour)))
	require.NoError(t, s.CreateBrowserSession(ctx, storage.BrowserSession{ID: "sess-dead", Subject: "a", AuthTime: ms(-time.Hour), ExpiresAt: ms(-time.Minute)}))
	require.NoError(t, s.CreateBrowserSession(ctx, storage.BrowserSession{ID: "sess-live", Subject: "a", AuthTime: ms(-time.Hour), ExpiresAt: ms(time.Hour)}))
	require.NoError(t, s.PutConsent(ctx, storage.Consent{Subject: "a", ClientID: "c", Scopes: []string{"openid"}, GrantedAt: ms(-48 * time.Hour)}))

	n, err := s.DeleteExpired(ctx, ms(0))
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
	_, err = s.ConsumeLoginState(ctx, "state-live")
	require.NoError(t, err)
	_, err = s.BrowserSession(ctx, "sess-live")
	require.NoError(t, err)
	_, err = s.Consent(ctx, "a", "c")
	require.NoError(t, err, "consents do not expire")
}

func testConcurrentConsumeLoginState(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	require.NoError(t, s.CreateLoginState(ctx, "state", []byte("once"), ms(time.Minute)))
	var won atomic.Int32
	race(parallelism, func(int) {
		data, err := s.ConsumeLoginState(ctx, "state")
		if err == nil {
			won.Add(1)
			assert.Equal(t, []byte("once"), data)
			return
		}
		assert.ErrorIs(t, err, storage.ErrNotFound)
	})
	assert.Equal(t, int32(1), won.Load(), "a login state was consumed more than once")
}

func testConcurrentAdvanceLoginState(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	require.NoError(t, s.CreateLoginState(ctx, "state", []byte("{}"), ms(time.Minute)))
	var won atomic.Int32
	race(parallelism, func(i int) {
		_, err := s.AdvanceLoginState(ctx, "state", fmt.Sprintf("next-%d", i), []byte(`,"n":1}`), ms(time.Minute))
		if err == nil {
			won.Add(1)
			return
		}
		assert.ErrorIs(t, err, storage.ErrNotFound)
	})
	assert.Equal(t, int32(1), won.Load(), "a login state was advanced more than once")
}
