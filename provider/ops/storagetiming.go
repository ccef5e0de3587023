package ops

import (
	"context"
	"errors"
	"time"

	"github.com/ory/fosite"
	fositestorage "github.com/ory/fosite/storage"

	"github.com/wxoidc/wxoidc/storage"
)

// TimeStorage returns s with every call timed into m's
// wxoidc_storage_operation_duration_seconds. The result keeps fosite's
// optional storage.Transactional if s has it, which is why it is returned
// as an interface. Methods added to storage.Storage later pass through
// untimed until they are listed here.
func TimeStorage(s storage.Storage, m *Metrics) storage.Storage {
	t := &timedStore{Storage: s, m: m}
	if tx, ok := s.(fositestorage.Transactional); ok {
		return &timedTxStore{timedStore: t, tx: tx}
	}
	return t
}

// storageResult is the result label of a storage call: not-found answers
// are normal (a lookup of an unknown token) and count as "ok".
func storageResult(err error) string {
	if err == nil || errors.Is(err, storage.ErrNotFound) || errors.Is(err, fosite.ErrNotFound) {
		return "ok"
	}
	return "error"
}

// timedStore times every storage.Storage method; one method per operation,
// written out so that each has its own label. Arguments are named by
// position (a1, a2, …): they pass through untouched.
type timedStore struct {
	storage.Storage
	m *Metrics
}

var _ storage.Storage = (*timedStore)(nil)

func (s *timedStore) observe(op string, start time.Time, err error) {
	s.m.observeStorage(op, start, err)
}

// timedTxStore adds fosite's transactions to a timedStore.
type timedTxStore struct {
	*timedStore
	tx fositestorage.Transactional
}

var _ fositestorage.Transactional = (*timedTxStore)(nil)

func (s *timedTxStore) BeginTX(ctx context.Context) (context.Context, error) {
	return s.tx.BeginTX(ctx)
}

func (s *timedTxStore) Commit(ctx context.Context) error {
	start := time.Now()
	err := s.tx.Commit(ctx)
	s.observe("Commit", start, err)
	return err
}

func (s *timedTxStore) Rollback(ctx context.Context) error { return s.tx.Rollback(ctx) }

func (s *timedStore) AcquireLease(ctx context.Context, a1 string, a2 string, a3 time.Duration) (r0 bool, err error) {
	start := time.Now()
	r0, err = s.Storage.AcquireLease(ctx, a1, a2, a3)
	s.observe("AcquireLease", start, err)
	return r0, err
}

func (s *timedStore) Client(ctx context.Context, a1 string) (r0 storage.Client, err error) {
	start := time.Now()
	r0, err = s.Storage.Client(ctx, a1)
	s.observe("Client", start, err)
	return r0, err
}

func (s *timedStore) ClientAssertionJWTValid(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.ClientAssertionJWTValid(ctx, a1)
	s.observe("ClientAssertionJWTValid", start, err)
	return err
}

func (s *timedStore) CreateAccessTokenSession(ctx context.Context, a1 string, a2 fosite.Requester) error {
	start := time.Now()
	err := s.Storage.CreateAccessTokenSession(ctx, a1, a2)
	s.observe("CreateAccessTokenSession", start, err)
	return err
}

func (s *timedStore) CreateAuthorizeCodeSession(ctx context.Context, a1 string, a2 fosite.Requester) error {
	start := time.Now()
	err := s.Storage.CreateAuthorizeCodeSession(ctx, a1, a2)
	s.observe("CreateAuthorizeCodeSession", start, err)
	return err
}

func (s *timedStore) CreateClient(ctx context.Context, a1 storage.Client) error {
	start := time.Now()
	err := s.Storage.CreateClient(ctx, a1)
	s.observe("CreateClient", start, err)
	return err
}

func (s *timedStore) CreateOpenIDConnectSession(ctx context.Context, a1 string, a2 fosite.Requester) error {
	start := time.Now()
	err := s.Storage.CreateOpenIDConnectSession(ctx, a1, a2)
	s.observe("CreateOpenIDConnectSession", start, err)
	return err
}

func (s *timedStore) CreatePARSession(ctx context.Context, a1 string, a2 fosite.AuthorizeRequester) error {
	start := time.Now()
	err := s.Storage.CreatePARSession(ctx, a1, a2)
	s.observe("CreatePARSession", start, err)
	return err
}

func (s *timedStore) CreatePKCERequestSession(ctx context.Context, a1 string, a2 fosite.Requester) error {
	start := time.Now()
	err := s.Storage.CreatePKCERequestSession(ctx, a1, a2)
	s.observe("CreatePKCERequestSession", start, err)
	return err
}

func (s *timedStore) CreateRefreshTokenSession(ctx context.Context, a1 string, a2 string, a3 fosite.Requester) error {
	start := time.Now()
	err := s.Storage.CreateRefreshTokenSession(ctx, a1, a2, a3)
	s.observe("CreateRefreshTokenSession", start, err)
	return err
}

func (s *timedStore) CreateSigningKey(ctx context.Context, a1 storage.SigningKey) error {
	start := time.Now()
	err := s.Storage.CreateSigningKey(ctx, a1)
	s.observe("CreateSigningKey", start, err)
	return err
}

func (s *timedStore) DeleteAccessTokenSession(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.DeleteAccessTokenSession(ctx, a1)
	s.observe("DeleteAccessTokenSession", start, err)
	return err
}

func (s *timedStore) DeleteClient(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.DeleteClient(ctx, a1)
	s.observe("DeleteClient", start, err)
	return err
}

func (s *timedStore) DeleteExpired(ctx context.Context, a1 time.Time) (r0 int64, err error) {
	start := time.Now()
	r0, err = s.Storage.DeleteExpired(ctx, a1)
	s.observe("DeleteExpired", start, err)
	return r0, err
}

func (s *timedStore) DeleteOpenIDConnectSession(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.DeleteOpenIDConnectSession(ctx, a1)
	s.observe("DeleteOpenIDConnectSession", start, err)
	return err
}

func (s *timedStore) DeletePARSession(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.DeletePARSession(ctx, a1)
	s.observe("DeletePARSession", start, err)
	return err
}

func (s *timedStore) DeletePKCERequestSession(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.DeletePKCERequestSession(ctx, a1)
	s.observe("DeletePKCERequestSession", start, err)
	return err
}

func (s *timedStore) DeleteRefreshTokenSession(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.DeleteRefreshTokenSession(ctx, a1)
	s.observe("DeleteRefreshTokenSession", start, err)
	return err
}

func (s *timedStore) DeleteServerToken(ctx context.Context, a1 string, a2 time.Time) error {
	start := time.Now()
	err := s.Storage.DeleteServerToken(ctx, a1, a2)
	s.observe("DeleteServerToken", start, err)
	return err
}

func (s *timedStore) DeleteSigningKey(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.DeleteSigningKey(ctx, a1)
	s.observe("DeleteSigningKey", start, err)
	return err
}

func (s *timedStore) GetAccessTokenSession(ctx context.Context, a1 string, a2 fosite.Session) (r0 fosite.Requester, err error) {
	start := time.Now()
	r0, err = s.Storage.GetAccessTokenSession(ctx, a1, a2)
	s.observe("GetAccessTokenSession", start, err)
	return r0, err
}

func (s *timedStore) GetAuthorizeCodeSession(ctx context.Context, a1 string, a2 fosite.Session) (r0 fosite.Requester, err error) {
	start := time.Now()
	r0, err = s.Storage.GetAuthorizeCodeSession(ctx, a1, a2)
	s.observe("GetAuthorizeCodeSession", start, err)
	return r0, err
}

func (s *timedStore) GetClient(ctx context.Context, a1 string) (r0 fosite.Client, err error) {
	start := time.Now()
	r0, err = s.Storage.GetClient(ctx, a1)
	s.observe("GetClient", start, err)
	return r0, err
}

func (s *timedStore) GetOpenIDConnectSession(ctx context.Context, a1 string, a2 fosite.Requester) (r0 fosite.Requester, err error) {
	start := time.Now()
	r0, err = s.Storage.GetOpenIDConnectSession(ctx, a1, a2)
	s.observe("GetOpenIDConnectSession", start, err)
	return r0, err
}

func (s *timedStore) GetPARSession(ctx context.Context, a1 string) (r0 fosite.AuthorizeRequester, err error) {
	start := time.Now()
	r0, err = s.Storage.GetPARSession(ctx, a1)
	s.observe("GetPARSession", start, err)
	return r0, err
}

func (s *timedStore) GetPKCERequestSession(ctx context.Context, a1 string, a2 fosite.Session) (r0 fosite.Requester, err error) {
	start := time.Now()
	r0, err = s.Storage.GetPKCERequestSession(ctx, a1, a2)
	s.observe("GetPKCERequestSession", start, err)
	return r0, err
}

func (s *timedStore) GetRefreshTokenSession(ctx context.Context, a1 string, a2 fosite.Session) (r0 fosite.Requester, err error) {
	start := time.Now()
	r0, err = s.Storage.GetRefreshTokenSession(ctx, a1, a2)
	s.observe("GetRefreshTokenSession", start, err)
	return r0, err
}

func (s *timedStore) Identities(ctx context.Context, a1 string) (r0 []storage.Identity, err error) {
	start := time.Now()
	r0, err = s.Storage.Identities(ctx, a1)
	s.observe("Identities", start, err)
	return r0, err
}

func (s *timedStore) Identity(ctx context.Context, a1 string, a2 string) (r0 storage.Identity, err error) {
	start := time.Now()
	r0, err = s.Storage.Identity(ctx, a1, a2)
	s.observe("Identity", start, err)
	return r0, err
}

func (s *timedStore) InvalidateAuthorizeCodeSession(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.InvalidateAuthorizeCodeSession(ctx, a1)
	s.observe("InvalidateAuthorizeCodeSession", start, err)
	return err
}

func (s *timedStore) LinkIdentity(ctx context.Context, a1 storage.LinkRequest) (r0 storage.User, r1 bool, err error) {
	start := time.Now()
	r0, r1, err = s.Storage.LinkIdentity(ctx, a1)
	s.observe("LinkIdentity", start, err)
	return r0, r1, err
}

func (s *timedStore) ListClients(ctx context.Context) (r0 []storage.Client, err error) {
	start := time.Now()
	r0, err = s.Storage.ListClients(ctx)
	s.observe("ListClients", start, err)
	return r0, err
}

func (s *timedStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.Storage.Ping(ctx)
	s.observe("Ping", start, err)
	return err
}

func (s *timedStore) PutSessionKey(ctx context.Context, a1 storage.SessionKey) error {
	start := time.Now()
	err := s.Storage.PutSessionKey(ctx, a1)
	s.observe("PutSessionKey", start, err)
	return err
}

func (s *timedStore) ReleaseLease(ctx context.Context, a1 string, a2 string) error {
	start := time.Now()
	err := s.Storage.ReleaseLease(ctx, a1, a2)
	s.observe("ReleaseLease", start, err)
	return err
}

func (s *timedStore) RevokeAccessToken(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.RevokeAccessToken(ctx, a1)
	s.observe("RevokeAccessToken", start, err)
	return err
}

func (s *timedStore) RevokeRefreshToken(ctx context.Context, a1 string) error {
	start := time.Now()
	err := s.Storage.RevokeRefreshToken(ctx, a1)
	s.observe("RevokeRefreshToken", start, err)
	return err
}

func (s *timedStore) RotateRefreshToken(ctx context.Context, a1 string, a2 string) error {
	start := time.Now()
	err := s.Storage.RotateRefreshToken(ctx, a1, a2)
	s.observe("RotateRefreshToken", start, err)
	return err
}

func (s *timedStore) SaveServerToken(ctx context.Context, a1 storage.ServerToken) (r0 storage.ServerToken, err error) {
	start := time.Now()
	r0, err = s.Storage.SaveServerToken(ctx, a1)
	s.observe("SaveServerToken", start, err)
	return r0, err
}

func (s *timedStore) ServerToken(ctx context.Context, a1 string) (r0 storage.ServerToken, err error) {
	start := time.Now()
	r0, err = s.Storage.ServerToken(ctx, a1)
	s.observe("ServerToken", start, err)
	return r0, err
}

func (s *timedStore) SessionKey(ctx context.Context, a1 string, a2 string) (r0 storage.SessionKey, err error) {
	start := time.Now()
	r0, err = s.Storage.SessionKey(ctx, a1, a2)
	s.observe("SessionKey", start, err)
	return r0, err
}

func (s *timedStore) SetClientAssertionJWT(ctx context.Context, a1 string, a2 time.Time) error {
	start := time.Now()
	err := s.Storage.SetClientAssertionJWT(ctx, a1, a2)
	s.observe("SetClientAssertionJWT", start, err)
	return err
}

func (s *timedStore) SigningKeys(ctx context.Context) (r0 []storage.SigningKey, err error) {
	start := time.Now()
	r0, err = s.Storage.SigningKeys(ctx)
	s.observe("SigningKeys", start, err)
	return r0, err
}

func (s *timedStore) UpdateClient(ctx context.Context, a1 string, a2 func(storage.Client) (storage.Client, error)) error {
	start := time.Now()
	err := s.Storage.UpdateClient(ctx, a1, a2)
	s.observe("UpdateClient", start, err)
	return err
}

func (s *timedStore) UpdateUser(ctx context.Context, a1 string, a2 func(storage.User) (storage.User, error)) error {
	start := time.Now()
	err := s.Storage.UpdateUser(ctx, a1, a2)
	s.observe("UpdateUser", start, err)
	return err
}

func (s *timedStore) User(ctx context.Context, a1 string) (r0 storage.User, err error) {
	start := time.Now()
	r0, err = s.Storage.User(ctx, a1)
	s.observe("User", start, err)
	return r0, err
}
