package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// clientMetadata is the JSON of the clients.metadata column: every field of
// storage.Client that has no column of its own.
type clientMetadata struct {
	Name                     string   `json:"name,omitempty"`
	RedirectURIs             []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs   []string `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes               []string `json:"grant_types,omitempty"`
	ResponseTypes            []string `json:"response_types,omitempty"`
	Scopes                   []string `json:"scopes,omitempty"`
	Audience                 []string `json:"audience,omitempty"`
	TokenEndpointAuthMethod  string   `json:"token_endpoint_auth_method,omitempty"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg,omitempty"`
	WeChatAppID              string   `json:"wechat_app_id,omitempty"`
	SkipConsent              bool     `json:"skip_consent,omitempty"`

	JWKS                             json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                          string          `json:"jwks_uri,omitempty"`
	RequestObjectSigningAlg          string          `json:"request_object_signing_alg,omitempty"`
	RequestURIs                      []string        `json:"request_uris,omitempty"`
	BackchannelLogoutURI             string          `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool            `json:"backchannel_logout_session_required,omitempty"`
}

func encodeClient(c storage.Client) (string, error) {
	b, err := json.Marshal(clientMetadata{
		Name:                     c.Name,
		RedirectURIs:             c.RedirectURIs,
		PostLogoutRedirectURIs:   c.PostLogoutRedirectURIs,
		GrantTypes:               c.GrantTypes,
		ResponseTypes:            c.ResponseTypes,
		Scopes:                   c.Scopes,
		Audience:                 c.Audience,
		TokenEndpointAuthMethod:  c.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		WeChatAppID:              c.WeChatAppID,
		SkipConsent:              c.SkipConsent,

		JWKS:                             c.JWKS,
		JWKSURI:                          c.JWKSURI,
		RequestObjectSigningAlg:          c.RequestObjectSigningAlg,
		RequestURIs:                      c.RequestURIs,
		BackchannelLogoutURI:             c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
	})
	return string(b), err
}

const (
	clientColumns = "id, secret_hash, metadata, version, created_at, updated_at"
	selectClient  = "SELECT " + clientColumns + " FROM clients WHERE id = ?"
)

// clientRow holds the columns of a client row (clientColumns).
type clientRow struct {
	id               string
	secretHash       []byte
	meta             []byte
	version          int64
	created, updated int64
}

func (r *clientRow) dest() []any {
	return []any{&r.id, &r.secretHash, &r.meta, &r.version, &r.created, &r.updated}
}

func (r *clientRow) client() (storage.Client, error) {
	var m clientMetadata
	if err := json.Unmarshal(r.meta, &m); err != nil {
		return storage.Client{}, fmt.Errorf("decode client %q: %w", r.id, err)
	}
	return storage.Client{
		ID:                       r.id,
		SecretHash:               r.secretHash,
		Name:                     m.Name,
		RedirectURIs:             m.RedirectURIs,
		PostLogoutRedirectURIs:   m.PostLogoutRedirectURIs,
		GrantTypes:               m.GrantTypes,
		ResponseTypes:            m.ResponseTypes,
		Scopes:                   m.Scopes,
		Audience:                 m.Audience,
		TokenEndpointAuthMethod:  m.TokenEndpointAuthMethod,
		IDTokenSignedResponseAlg: m.IDTokenSignedResponseAlg,
		WeChatAppID:              m.WeChatAppID,
		SkipConsent:              m.SkipConsent,

		JWKS:                             m.JWKS,
		JWKSURI:                          m.JWKSURI,
		RequestObjectSigningAlg:          m.RequestObjectSigningAlg,
		RequestURIs:                      m.RequestURIs,
		BackchannelLogoutURI:             m.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: m.BackchannelLogoutSessionRequired,

		CreatedAt: fromMicros(r.created),
		UpdatedAt: fromMicros(r.updated),
	}, nil
}

func (s *Store) client(ctx context.Context, id string) (storage.Client, int64, error) {
	var r clientRow
	if err := s.queryRow(ctx, selectClient, []any{id}, r.dest()...); err != nil {
		return storage.Client{}, 0, s.wrap(fmt.Sprintf("client %q", id), err)
	}
	cl, err := r.client()
	if err != nil {
		return storage.Client{}, 0, fmt.Errorf("%s: %w", s.d.Name, err)
	}
	return cl, r.version, nil
}

// GetClient implements fosite.ClientManager; it returns a *storage.Client.
// Outside transactions it may answer from a cache (see clientTTL).
func (s *Store) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	if s.state(ctx) != nil {
		cl, _, err := s.client(ctx, id)
		if err != nil {
			return nil, err
		}
		return &cl, nil
	}
	now := time.Now()
	cl, ok, gen := s.clients.get(id, now)
	if ok {
		return &cl, nil
	}
	cl, _, err := s.client(ctx, id)
	if err != nil {
		return nil, err
	}
	s.clients.put(cl, now, gen)
	return &cl, nil
}

// Client implements storage.ClientStore.
func (s *Store) Client(ctx context.Context, id string) (storage.Client, error) {
	cl, _, err := s.client(ctx, id)
	return cl, err
}

// ListClients implements storage.ClientStore.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	var out []storage.Client
	err := s.query(ctx, "SELECT "+clientColumns+" FROM clients ORDER BY id", nil, func(rows *sql.Rows) error {
		var r clientRow
		if err := rows.Scan(r.dest()...); err != nil {
			return err
		}
		cl, err := r.client()
		out = append(out, cl)
		return err
	})
	if err != nil {
		return nil, s.wrap("list clients", err)
	}
	return out, nil
}

// CreateClient implements storage.ClientStore. Zero CreatedAt and UpdatedAt
// are set to the current time.
func (s *Store) CreateClient(ctx context.Context, cl storage.Client) error {
	if cl.ID == "" {
		return fmt.Errorf("%s: create client: empty ID", s.d.Name)
	}
	if cl.CreatedAt.IsZero() {
		cl.CreatedAt = s.now()
	}
	if cl.UpdatedAt.IsZero() {
		cl.UpdatedAt = cl.CreatedAt
	}
	meta, err := encodeClient(cl)
	if err != nil {
		return fmt.Errorf("%s: create client %q: %w", s.d.Name, cl.ID, err)
	}
	_, err = s.exec(ctx, "INSERT INTO clients ("+clientColumns+") VALUES (?, ?, ?, 1, ?, ?)",
		cl.ID, cl.SecretHash, meta, micros(cl.CreatedAt), micros(cl.UpdatedAt))
	return s.wrap(fmt.Sprintf("create client %q", cl.ID), err)
}

// UpdateClient implements storage.ClientStore with compare-and-swap on the
// row's version, rerunning update when another writer won. CreatedAt is
// kept; an unchanged UpdatedAt is set to the current time.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) error {
	op := fmt.Sprintf("update client %q", id)
	for range maxCASAttempts {
		old, version, err := s.client(ctx, id)
		if err != nil {
			return err
		}
		cl, err := update(old.Clone())
		if err != nil {
			return fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
		}
		if cl.ID != id {
			return fmt.Errorf("%s: %s: the ID cannot change", s.d.Name, op)
		}
		if cl.UpdatedAt.Equal(old.UpdatedAt) || cl.UpdatedAt.IsZero() {
			cl.UpdatedAt = s.now()
		}
		meta, err := encodeClient(cl)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
		}
		n, err := s.execN(ctx, "UPDATE clients SET secret_hash = ?, metadata = ?, updated_at = ?, version = version + 1 WHERE id = ? AND version = ?",
			cl.SecretHash, meta, micros(cl.UpdatedAt), id, version)
		if err != nil {
			return s.wrap(op, err)
		}
		if n == 1 {
			s.clientChanged(ctx, id)
			return nil
		}
	}
	return fmt.Errorf("%s: %s: %w", s.d.Name, op, storage.ErrConflict)
}

// DeleteClient implements storage.ClientStore: the client and its dynamic
// registration go in one transaction, so that the registration access
// token dies with its client.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	op := fmt.Sprintf("delete client %q", id)
	err := s.inTx(ctx, op, false, func(ctx context.Context) error {
		if _, err := s.exec(ctx, "DELETE FROM client_registrations WHERE client_id = ?", id); err != nil {
			return s.wrap(op, err)
		}
		n, err := s.execN(ctx, "DELETE FROM clients WHERE id = ?", id)
		if err != nil {
			return s.wrap(op, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: %s: %w", s.d.Name, op, storage.ErrNotFound)
		}
		s.clientChanged(ctx, id)
		return nil
	})
	s.clientChanged(ctx, id)
	return err
}

// maxCASAttempts bounds compare-and-swap loops.
const maxCASAttempts = 100
