package memory

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/wxoidc/wxoidc/storage"
)

// CreateInitialAccessToken implements storage.RegistrationStore.
func (s *Store) CreateInitialAccessToken(_ context.Context, t storage.InitialAccessToken) error {
	if t.ID == "" || len(t.Hash) == 0 {
		return fmt.Errorf("memory: create initial access token: empty ID or hash")
	}
	t = t.Clone()
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = norm(t.CreatedAt), norm(t.ExpiresAt), norm(t.LastUsedAt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.iats[t.ID]; ok {
		return fmt.Errorf("memory: create initial access token %q: %w", t.ID, storage.ErrAlreadyExists)
	}
	if _, ok := s.iatByHash(t.Hash); ok {
		return fmt.Errorf("memory: create initial access token %q: hash: %w", t.ID, storage.ErrAlreadyExists)
	}
	s.iats[t.ID] = t
	return nil
}

// iatByHash finds a token by hash. The caller holds s.mu.
func (s *Store) iatByHash(hash []byte) (storage.InitialAccessToken, bool) {
	for _, t := range s.iats {
		if bytes.Equal(t.Hash, hash) {
			return t, true
		}
	}
	return storage.InitialAccessToken{}, false
}

// InitialAccessTokens implements storage.RegistrationStore.
func (s *Store) InitialAccessTokens(context.Context) ([]storage.InitialAccessToken, error) {
	s.mu.RLock()
	out := make([]storage.InitialAccessToken, 0, len(s.iats))
	for _, t := range s.iats {
		out = append(out, t.Clone())
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b storage.InitialAccessToken) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	return out, nil
}

// InitialAccessToken implements storage.RegistrationStore.
func (s *Store) InitialAccessToken(_ context.Context, hash []byte) (storage.InitialAccessToken, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.iatByHash(hash)
	if !ok {
		return storage.InitialAccessToken{}, fmt.Errorf("memory: initial access token: %w", storage.ErrNotFound)
	}
	return t.Clone(), nil
}

// DeleteInitialAccessToken implements storage.RegistrationStore.
func (s *Store) DeleteInitialAccessToken(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.iats[id]; !ok {
		return fmt.Errorf("memory: delete initial access token %q: %w", id, storage.ErrNotFound)
	}
	delete(s.iats, id)
	return nil
}

// RegisterClient implements storage.RegistrationStore under one lock, so
// that the use, the client and the registration appear together.
func (s *Store) RegisterClient(_ context.Context, r storage.Registration) error {
	c := r.Client.Clone()
	if c.ID == "" {
		return fmt.Errorf("memory: register client: empty ID")
	}
	now := norm(r.Now)
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now
	}
	if c.UpdatedAt.IsZero() {
		c.UpdatedAt = c.CreatedAt
	}
	c.CreatedAt, c.UpdatedAt = norm(c.CreatedAt), norm(c.UpdatedAt)
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.iatByHash(r.InitialTokenHash)
	if !ok || t.UsesLeft <= 0 || !now.Before(t.ExpiresAt) {
		return fmt.Errorf("memory: register client: initial access token: %w", storage.ErrNotFound)
	}
	if _, ok := s.clients[c.ID]; ok {
		return fmt.Errorf("memory: register client %q: %w", c.ID, storage.ErrAlreadyExists)
	}
	t.UsesLeft--
	t.LastUsedAt = now
	s.iats[t.ID] = t
	s.clients[c.ID] = c
	s.regs[c.ID] = storage.ClientRegistration{ClientID: c.ID, TokenHash: bytes.Clone(r.TokenHash), InitialTokenID: t.ID, CreatedAt: now}
	return nil
}

// ClientRegistration implements storage.RegistrationStore.
func (s *Store) ClientRegistration(_ context.Context, clientID string) (storage.ClientRegistration, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	reg, ok := s.regs[clientID]
	if !ok {
		return storage.ClientRegistration{}, fmt.Errorf("memory: client registration %q: %w", clientID, storage.ErrNotFound)
	}
	reg.TokenHash = bytes.Clone(reg.TokenHash)
	return reg, nil
}

// SetRegistrationToken implements storage.RegistrationStore.
func (s *Store) SetRegistrationToken(_ context.Context, clientID string, hash []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg, ok := s.regs[clientID]
	if !ok {
		return fmt.Errorf("memory: set registration token %q: %w", clientID, storage.ErrNotFound)
	}
	reg.TokenHash = bytes.Clone(hash)
	s.regs[clientID] = reg
	return nil
}
