package memory

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/wxoidc/wxoidc/storage"
)

var _ storage.Storage = (*Store)(nil)

// neverExpires is the expiry recorded for a refresh token whose session sets
// none: fosite treats such a token as valid forever.
var neverExpires = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// defaultLifetime is how long a code, access token, PKCE, OpenID Connect or
// PAR record without an expiry in its session is kept, from its request
// time, before DeleteExpired may remove it.
const defaultLifetime = 30 * 24 * time.Hour

// Store is an in-memory [storage.Storage]. The zero value is not usable;
// call [New]. A Store is safe for concurrent use.
type Store struct {
	now func() time.Time // never nil after New

	mu           sync.RWMutex // guards every field below
	tables       [numTables]map[string]*tokenRow
	jtis         map[string]time.Time // jti → expiry
	clients      map[string]storage.Client
	iats         map[string]storage.InitialAccessToken // initial access tokens by ID
	regs         map[string]storage.ClientRegistration // by client ID
	users        map[string]storage.User
	unionIDs     map[string]string // unionid → subject; mirrors users
	identities   map[identityKey]storage.Identity
	keys         map[string]storage.SigningKey
	sessionKeys  map[identityKey]storage.SessionKey // keyed by (appID, subject)
	serverTokens map[string]storage.ServerToken
	leases       map[string]lease
	rates        map[string]int64 // rate limit → theoretical arrival time, Unix µs
	events       []storage.Event  // oldest first
	rollups      rollups          // daily event counts (Stats.RollUpEvents)

	web     webLogin   // login states, browser sessions, consents; own lock
	devices devices    // device authorizations; own lock
	pushes  pushEvents // recorded push events; own lock

	successors  successors  // refresh successors; own lock
	backchannel backchannel // session clients and logout jobs; own lock
}

type table int

const (
	codes table = iota
	accessTokens
	refreshTokens
	pkceRequests
	oidcSessions
	parRequests
	numTables
)

var tableNames = [numTables]string{"authorization code", "access token", "refresh token", "PKCE request", "OpenID Connect session", "pushed authorization request"}

// tokenRow is one stored fosite request. data is the JSON of a
// storage.RequestRecord and is never modified after insertion.
type tokenRow struct {
	data      []byte
	requestID string
	expiresAt time.Time
	active    bool
}

type identityKey struct{ appID, id string }

type lease struct {
	holder    string
	expiresAt time.Time
}

// New returns an empty Store.
func New() *Store {
	s := &Store{
		now:          time.Now,
		jtis:         map[string]time.Time{},
		clients:      map[string]storage.Client{},
		iats:         map[string]storage.InitialAccessToken{},
		regs:         map[string]storage.ClientRegistration{},
		users:        map[string]storage.User{},
		unionIDs:     map[string]string{},
		identities:   map[identityKey]storage.Identity{},
		keys:         map[string]storage.SigningKey{},
		sessionKeys:  map[identityKey]storage.SessionKey{},
		serverTokens: map[string]storage.ServerToken{},
		leases:       map[string]lease{},
		rates:        map[string]int64{},
		rollups:      rollups{counts: map[rollKey]int64{}},
	}
	for i := range s.tables {
		s.tables[i] = map[string]*tokenRow{}
	}
	return s
}

// Ping implements storage.Storage; the memory store is always reachable.
func (s *Store) Ping(context.Context) error { return nil }

// Close implements storage.Storage; it does nothing.
func (s *Store) Close() error { return nil }

// norm returns t in UTC at microsecond precision, the precision the SQL
// backends keep, so that every backend round-trips times identically.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// expiry is when the record of type tt may be deleted; see the package
// documentation of storage/internal/sqlstore for the fallbacks.
func (s *Store) expiry(rec storage.RequestRecord, tt fosite.TokenType) time.Time {
	if e := rec.ExpiresAt(tt); !e.IsZero() {
		return norm(e)
	}
	if tt == fosite.RefreshToken {
		return neverExpires
	}
	base := rec.RequestedAt
	if base.IsZero() {
		base = s.now()
	}
	return norm(base.Add(defaultLifetime))
}

func (s *Store) create(t table, key string, r fosite.Requester, tt fosite.TokenType) error {
	rec, err := storage.EncodeRequest(r)
	if err != nil {
		return err
	}
	data, err := rec.Marshal()
	if err != nil {
		return fmt.Errorf("memory: encode %s: %w", tableNames[t], err)
	}
	row := &tokenRow{data: data, requestID: rec.ID, expiresAt: s.expiry(rec, tt), active: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tables[t][key]; ok {
		return fmt.Errorf("memory: create %s: %w", tableNames[t], storage.ErrAlreadyExists)
	}
	s.tables[t][key] = row
	return nil
}

// load returns a copy of the stored record and whether it is active.
func (s *Store) load(t table, key string) (storage.RequestRecord, tokenRow, error) {
	s.mu.RLock()
	row, ok := s.tables[t][key]
	var cp tokenRow
	if ok {
		cp = *row
	}
	s.mu.RUnlock()
	if !ok {
		return storage.RequestRecord{}, cp, fmt.Errorf("memory: %s: %w", tableNames[t], storage.ErrNotFound)
	}
	var rec storage.RequestRecord
	if err := json.Unmarshal(cp.data, &rec); err != nil {
		return rec, cp, fmt.Errorf("memory: decode %s: %w", tableNames[t], err)
	}
	return rec, cp, nil
}

func (s *Store) get(ctx context.Context, t table, key string, session fosite.Session) (*fosite.Request, bool, error) {
	rec, row, err := s.load(t, key)
	if err != nil {
		return nil, false, err
	}
	req, err := rec.Decode(ctx, s, session)
	if err != nil {
		return nil, false, err
	}
	return req, row.active, nil
}

func (s *Store) delete(t table, key string) {
	s.mu.Lock()
	delete(s.tables[t], key)
	s.mu.Unlock()
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *Store) CreateAuthorizeCodeSession(_ context.Context, signature string, r fosite.Requester) error {
	return s.create(codes, signature, r, fosite.AuthorizeCode)
}

// GetAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. An
// invalidated code returns the request together with
// fosite.ErrInvalidatedAuthorizeCode.
func (s *Store) GetAuthorizeCodeSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.get(ctx, codes, signature, session)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInvalidatedAuthorizeCode
	}
	return req, nil
}

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage. It
// returns fosite.ErrInvalidatedAuthorizeCode unless the code was active.
func (s *Store) InvalidateAuthorizeCodeSession(_ context.Context, signature string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok := s.tables[codes][signature]
	if !ok || !row.active {
		return fosite.ErrInvalidatedAuthorizeCode
	}
	row.active = false
	return nil
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Store) CreateAccessTokenSession(_ context.Context, signature string, r fosite.Requester) error {
	return s.create(accessTokens, signature, r, fosite.AccessToken)
}

// GetAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Store) GetAccessTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := s.get(ctx, accessTokens, signature, session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeleteAccessTokenSession implements oauth2.AccessTokenStorage; deleting a
// missing token is not an error.
func (s *Store) DeleteAccessTokenSession(_ context.Context, signature string) error {
	s.delete(accessTokens, signature)
	return nil
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *Store) CreateRefreshTokenSession(_ context.Context, signature, _ string, r fosite.Requester) error {
	return s.create(refreshTokens, signature, r, fosite.RefreshToken)
}

// GetRefreshTokenSession implements oauth2.RefreshTokenStorage. A rotated or
// revoked token returns the request together with fosite.ErrInactiveToken.
func (s *Store) GetRefreshTokenSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, active, err := s.get(ctx, refreshTokens, signature, session)
	if err != nil {
		return nil, err
	}
	if !active {
		return req, fosite.ErrInactiveToken
	}
	return req, nil
}

// DeleteRefreshTokenSession implements oauth2.RefreshTokenStorage; deleting
// a missing token is not an error.
func (s *Store) DeleteRefreshTokenSession(_ context.Context, signature string) error {
	s.delete(refreshTokens, signature)
	return nil
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage: it deactivates
// the refresh token if it is still active (otherwise storage.ErrNotFound)
// and deletes the access tokens of requestID, atomically.
func (s *Store) RotateRefreshToken(_ context.Context, requestID, signature string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	row, ok := s.tables[refreshTokens][signature]
	if !ok || !row.active {
		return fmt.Errorf("memory: rotate refresh token: %w", storage.ErrNotFound)
	}
	row.active = false
	s.deleteByRequestID(accessTokens, requestID)
	return nil
}

// deleteByRequestID must be called with mu held.
func (s *Store) deleteByRequestID(t table, requestID string) {
	for k, row := range s.tables[t] {
		if row.requestID == requestID {
			delete(s.tables[t], k)
		}
	}
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage: every refresh
// token of the request ID becomes inactive.
func (s *Store) RevokeRefreshToken(_ context.Context, requestID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, row := range s.tables[refreshTokens] {
		if row.requestID == requestID {
			row.active = false
		}
	}
	return nil
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage: every access
// token of the request ID is deleted.
func (s *Store) RevokeAccessToken(_ context.Context, requestID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteByRequestID(accessTokens, requestID)
	return nil
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (s *Store) CreatePKCERequestSession(_ context.Context, signature string, r fosite.Requester) error {
	return s.create(pkceRequests, signature, r, fosite.AuthorizeCode)
}

// GetPKCERequestSession implements pkce.PKCERequestStorage.
func (s *Store) GetPKCERequestSession(ctx context.Context, signature string, session fosite.Session) (fosite.Requester, error) {
	req, _, err := s.get(ctx, pkceRequests, signature, session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeletePKCERequestSession implements pkce.PKCERequestStorage.
func (s *Store) DeletePKCERequestSession(_ context.Context, signature string) error {
	s.delete(pkceRequests, signature)
	return nil
}

// CreateOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
// The raw authorization code is hashed before use as a key.
func (s *Store) CreateOpenIDConnectSession(_ context.Context, code string, r fosite.Requester) error {
	return s.create(oidcSessions, hash(code), r, fosite.AuthorizeCode)
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage; the
// session is unmarshalled into requester's session.
func (s *Store) GetOpenIDConnectSession(ctx context.Context, code string, requester fosite.Requester) (fosite.Requester, error) {
	var session fosite.Session
	if requester != nil {
		session = requester.GetSession()
	}
	req, _, err := s.get(ctx, oidcSessions, hash(code), session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
func (s *Store) DeleteOpenIDConnectSession(_ context.Context, code string) error {
	s.delete(oidcSessions, hash(code))
	return nil
}

// CreatePARSession implements fosite.PARStorage.
func (s *Store) CreatePARSession(_ context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	return s.create(parRequests, requestURI, r, fosite.PushedAuthorizeRequestContext)
}

// GetPARSession implements fosite.PARStorage. A request past its
// fosite.PushedAuthorizeRequestContext expiry is not found. The session is
// decoded into an *openid.DefaultSession (fosite replaces it when the
// authorization completes).
func (s *Store) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	rec, row, err := s.load(parRequests, requestURI)
	if err != nil {
		return nil, err
	}
	if !row.expiresAt.After(s.now()) {
		return nil, fmt.Errorf("memory: pushed authorization request expired: %w", storage.ErrNotFound)
	}
	return rec.DecodeAuthorize(ctx, s, new(openid.DefaultSession))
}

// DeletePARSession implements fosite.PARStorage.
func (s *Store) DeletePARSession(_ context.Context, requestURI string) error {
	s.delete(parRequests, requestURI)
	return nil
}

// ClientAssertionJWTValid implements fosite.ClientManager: it returns
// fosite.ErrJTIKnown if jti is recorded and has not expired.
func (s *Store) ClientAssertionJWTValid(_ context.Context, jti string) error {
	s.mu.RLock()
	exp, ok := s.jtis[hash(jti)]
	s.mu.RUnlock()
	if ok && exp.After(s.now()) {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT implements fosite.ClientManager: it records jti
// until exp, or returns fosite.ErrJTIKnown if it is recorded and unexpired.
func (s *Store) SetClientAssertionJWT(_ context.Context, jti string, exp time.Time) error {
	k := hash(jti)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.jtis[k]; ok && old.After(s.now()) {
		return fosite.ErrJTIKnown
	}
	s.jtis[k] = norm(exp)
	return nil
}

// DeleteExpired implements storage.Storage.
func (s *Store) DeleteExpired(_ context.Context, before time.Time) (int64, error) {
	var n int64
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tables {
		for k, row := range t {
			if row.expiresAt.Before(before) {
				delete(t, k)
				n++
			}
		}
	}
	for k, exp := range s.jtis {
		if exp.Before(before) {
			delete(s.jtis, k)
			n++
		}
	}
	for k, l := range s.leases {
		if l.expiresAt.Before(before) {
			delete(s.leases, k)
			n++
		}
	}
	for k, tat := range s.rates {
		if tat < before.UnixMicro() {
			delete(s.rates, k)
			n++
		}
	}
	for id, t := range s.iats {
		if t.ExpiresAt.Before(before) {
			delete(s.iats, id)
			n++
		}
	}
	n += s.web.deleteExpired(before)
	n += s.devices.deleteExpired(before)
	n += s.pushes.deleteExpired(before)
	n += s.successors.deleteExpired(before)
	n += s.backchannel.deleteExpired(before)
	return n, nil
}

// GetClient implements fosite.ClientManager; it returns a *storage.Client.
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.Client(ctx, id)
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Client implements storage.ClientStore.
func (s *Store) Client(_ context.Context, id string) (storage.Client, error) {
	s.mu.RLock()
	c, ok := s.clients[id]
	s.mu.RUnlock()
	if !ok {
		return storage.Client{}, fmt.Errorf("memory: client %q: %w", id, storage.ErrNotFound)
	}
	return c.Clone(), nil
}

// ListClients implements storage.ClientStore.
func (s *Store) ListClients(context.Context) ([]storage.Client, error) {
	s.mu.RLock()
	out := make([]storage.Client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, c.Clone())
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b storage.Client) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// CreateClient implements storage.ClientStore. Zero CreatedAt and UpdatedAt
// are set to the current time.
func (s *Store) CreateClient(_ context.Context, c storage.Client) error {
	if c.ID == "" {
		return fmt.Errorf("memory: create client: empty ID")
	}
	c = c.Clone()
	now := norm(s.now())
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	c.CreatedAt, c.UpdatedAt = norm(c.CreatedAt), norm(c.UpdatedAt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return fmt.Errorf("memory: create client %q: %w", c.ID, storage.ErrAlreadyExists)
	}
	s.clients[c.ID] = c
	return nil
}

// UpdateClient implements storage.ClientStore. CreatedAt is kept; an
// unchanged UpdatedAt is set to the current time.
func (s *Store) UpdateClient(_ context.Context, id string, update func(storage.Client) (storage.Client, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.clients[id]
	if !ok {
		return fmt.Errorf("memory: update client %q: %w", id, storage.ErrNotFound)
	}
	c, err := update(old.Clone())
	if err != nil {
		return fmt.Errorf("memory: update client %q: %w", id, err)
	}
	if c.ID != id {
		return fmt.Errorf("memory: update client %q: the ID cannot change", id)
	}
	c = c.Clone()
	c.CreatedAt = old.CreatedAt
	if c.UpdatedAt.Equal(old.UpdatedAt) || c.UpdatedAt.IsZero() {
		c.UpdatedAt = s.now()
	}
	c.UpdatedAt = norm(c.UpdatedAt)
	s.clients[id] = c
	return nil
}

// DeleteClient implements storage.ClientStore.
func (s *Store) DeleteClient(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return fmt.Errorf("memory: delete client %q: %w", id, storage.ErrNotFound)
	}
	delete(s.clients, id)
	delete(s.regs, id)
	return nil
}

func cloneKey(k storage.SigningKey) storage.SigningKey {
	k.Private = slices.Clone(k.Private)
	k.Public = slices.Clone(k.Public)
	return k
}

// CreateSigningKey implements storage.KeyStore.
func (s *Store) CreateSigningKey(_ context.Context, k storage.SigningKey) error {
	if k.KID == "" {
		return fmt.Errorf("memory: create signing key: empty kid")
	}
	k = cloneKey(k)
	k.CreatedAt, k.ActivatesAt = norm(k.CreatedAt), norm(k.ActivatesAt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.KID]; ok {
		return fmt.Errorf("memory: create signing key %q: %w", k.KID, storage.ErrAlreadyExists)
	}
	s.keys[k.KID] = k
	return nil
}

// SigningKeys implements storage.KeyStore.
func (s *Store) SigningKeys(context.Context) ([]storage.SigningKey, error) {
	s.mu.RLock()
	out := make([]storage.SigningKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, cloneKey(k))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b storage.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.KID, b.KID))
	})
	return out, nil
}

// DeleteSigningKey implements storage.KeyStore.
func (s *Store) DeleteSigningKey(_ context.Context, kid string) error {
	s.mu.Lock()
	delete(s.keys, kid)
	s.mu.Unlock()
	return nil
}

// PutSessionKey implements storage.WeChatStore.
func (s *Store) PutSessionKey(_ context.Context, k storage.SessionKey) error {
	k.Ciphertext = slices.Clone(k.Ciphertext)
	k.UpdatedAt = norm(k.UpdatedAt)
	s.mu.Lock()
	s.sessionKeys[identityKey{k.AppID, k.Subject}] = k
	s.mu.Unlock()
	return nil
}

// SessionKey implements storage.WeChatStore.
func (s *Store) SessionKey(_ context.Context, subject, appID string) (storage.SessionKey, error) {
	s.mu.RLock()
	k, ok := s.sessionKeys[identityKey{appID, subject}]
	s.mu.RUnlock()
	if !ok {
		return storage.SessionKey{}, fmt.Errorf("memory: session key: %w", storage.ErrNotFound)
	}
	k.Ciphertext = slices.Clone(k.Ciphertext)
	return k, nil
}

// ServerToken implements storage.WeChatStore.
func (s *Store) ServerToken(_ context.Context, appID string) (storage.ServerToken, error) {
	s.mu.RLock()
	t, ok := s.serverTokens[appID]
	s.mu.RUnlock()
	if !ok {
		return storage.ServerToken{}, fmt.Errorf("memory: server token of %q: %w", appID, storage.ErrNotFound)
	}
	t.Token = slices.Clone(t.Token)
	return t, nil
}

// SaveServerToken implements storage.WeChatStore (compare-and-swap on
// ExpiresAt).
func (s *Store) SaveServerToken(_ context.Context, t storage.ServerToken) (storage.ServerToken, error) {
	t.Token = slices.Clone(t.Token)
	t.ExpiresAt = norm(t.ExpiresAt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.serverTokens[t.AppID]; ok && !cur.ExpiresAt.Before(t.ExpiresAt) {
		cur.Token = slices.Clone(cur.Token)
		return cur, nil
	}
	s.serverTokens[t.AppID] = t
	t.Token = slices.Clone(t.Token)
	return t, nil
}

// DeleteServerToken implements storage.WeChatStore.
func (s *Store) DeleteServerToken(_ context.Context, appID string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.serverTokens[appID]; ok && cur.ExpiresAt.Equal(norm(expiresAt)) {
		delete(s.serverTokens, appID)
	}
	return nil
}

// AcquireLease implements storage.LeaseStore.
func (s *Store) AcquireLease(_ context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[name]; ok && l.holder != holder && l.expiresAt.After(now) {
		return false, nil
	}
	s.leases[name] = lease{holder: holder, expiresAt: norm(now.Add(ttl))}
	return true, nil
}

// TakeRate implements storage.RateStore.
func (s *Store) TakeRate(_ context.Context, name string, n int, rate float64, burst int, now time.Time) (bool, error) {
	cost, tolerance, ok := storage.RateCost(n, rate, burst)
	if !ok {
		return false, nil
	}
	t := now.UnixMicro()
	s.mu.Lock()
	defer s.mu.Unlock()
	tat := max(s.rates[name], t)
	if tat+cost > t+tolerance {
		return false, nil
	}
	s.rates[name] = tat + cost
	return true, nil
}

// ReleaseLease implements storage.LeaseStore.
func (s *Store) ReleaseLease(_ context.Context, name, holder string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[name]; ok && l.holder == holder {
		delete(s.leases, name)
	}
	return nil
}
