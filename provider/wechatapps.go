package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// WeChatApp is a WeChat app whose AppSecret the provider holds: a Mini
// Program (the WeChat grant), a website app (QR login) or an official
// account (in-WeChat login).
type WeChatApp struct {
	Kind   wechat.AppKind
	Client *wechat.Client
}

// TokenStore keeps WeChat server access tokens in storage, encrypted, so
// every replica shares one token per app; it implements wechat.TokenStore
// and wechat.TokenLocker (through storage leases).
type TokenStore struct {
	store  storage.Storage
	sealer *keys.Sealer
	holder string
}

var (
	_ wechat.TokenStore  = (*TokenStore)(nil)
	_ wechat.TokenLocker = (*TokenStore)(nil)
)

// NewTokenStore returns the token store over s; holder names this process
// in the refresh lease.
func NewTokenStore(s storage.Storage, systemSecret []byte, holder string) (*TokenStore, error) {
	sealer, err := keys.NewSealer(systemSecret, keys.PurposeWeChatServerTokens)
	if err != nil {
		return nil, err
	}
	return &TokenStore{store: s, sealer: sealer, holder: holder}, nil
}

// LoadToken implements wechat.TokenStore.
func (t *TokenStore) LoadToken(ctx context.Context, appID string) (wechat.ServerToken, error) {
	rec, err := t.store.ServerToken(ctx, appID)
	if errors.Is(err, storage.ErrNotFound) {
		return wechat.ServerToken{}, wechat.ErrNoToken
	}
	if err != nil {
		return wechat.ServerToken{}, err
	}
	return t.open(rec)
}

func (t *TokenStore) open(rec storage.ServerToken) (wechat.ServerToken, error) {
	plain, err := t.sealer.Open(rec.Token, []byte(rec.AppID))
	if err != nil {
		return wechat.ServerToken{}, fmt.Errorf("open stored server token of %s: %w", rec.AppID, err)
	}
	return wechat.ServerToken{AccessToken: string(plain), ExpiresAt: rec.ExpiresAt}, nil
}

// SaveToken implements wechat.TokenStore (compare-and-swap on expiry).
func (t *TokenStore) SaveToken(ctx context.Context, appID string, tok wechat.ServerToken) (wechat.ServerToken, error) {
	sealed, err := t.sealer.Seal([]byte(tok.AccessToken), []byte(appID))
	if err != nil {
		return wechat.ServerToken{}, err
	}
	rec, err := t.store.SaveServerToken(ctx, storage.ServerToken{AppID: appID, Token: sealed, ExpiresAt: tok.ExpiresAt})
	if err != nil {
		return wechat.ServerToken{}, err
	}
	return t.open(rec)
}

// DeleteToken implements wechat.TokenStore.
func (t *TokenStore) DeleteToken(ctx context.Context, appID string, expiresAt time.Time) error {
	return t.store.DeleteServerToken(ctx, appID, expiresAt)
}

// tokenLeaseTTL bounds how long one replica may hold the refresh of an
// app's token.
const tokenLeaseTTL = time.Minute

// LockToken implements wechat.TokenLocker with a storage lease, so one
// replica at a time fetches from WeChat.
func (t *TokenStore) LockToken(ctx context.Context, appID string) (func(), bool, error) {
	name := "wechat-token/" + appID
	ok, err := t.store.AcquireLease(ctx, name, t.holder, tokenLeaseTTL)
	if err != nil || !ok {
		return nil, false, err
	}
	return func() { t.store.ReleaseLease(context.WithoutCancel(ctx), name, t.holder) }, true, nil
}
