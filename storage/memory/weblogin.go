package memory

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// webLogin holds login states, browser sessions and consents. Its maps are
// created on first use.
type webLogin struct {
	mu       sync.Mutex // guards every field below
	states   map[[32]byte]loginState
	sessions map[[32]byte]storage.BrowserSession // ID is cleared
	consents map[consentKey]storage.Consent
}

type loginState struct {
	data      []byte
	expiresAt time.Time
}

type consentKey struct{ subject, clientID string }

func (w *webLogin) initLocked() {
	if w.states == nil {
		w.states = map[[32]byte]loginState{}
		w.sessions = map[[32]byte]storage.BrowserSession{}
		w.consents = map[consentKey]storage.Consent{}
	}
}

func (w *webLogin) deleteExpired(before time.Time) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var n int64
	for k, st := range w.states {
		if st.expiresAt.Before(before) {
			delete(w.states, k)
			n++
		}
	}
	for k, bs := range w.sessions {
		if bs.ExpiresAt.Before(before) {
			delete(w.sessions, k)
			n++
		}
	}
	return n
}

// CreateLoginState implements storage.LoginStateStore.
func (s *Store) CreateLoginState(_ context.Context, id string, data []byte, expiresAt time.Time) error {
	k := sha256.Sum256([]byte(id))
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	if _, ok := w.states[k]; ok {
		return fmt.Errorf("memory: login state: %w", storage.ErrAlreadyExists)
	}
	w.states[k] = loginState{data: slices.Clone(data), expiresAt: expiresAt}
	return nil
}

// ConsumeLoginState implements storage.LoginStateStore.
func (s *Store) ConsumeLoginState(_ context.Context, id string) ([]byte, error) {
	k := sha256.Sum256([]byte(id))
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	st, ok := w.states[k]
	delete(w.states, k)
	if !ok || !st.expiresAt.After(s.now()) {
		return nil, fmt.Errorf("memory: login state: %w", storage.ErrNotFound)
	}
	return st.data, nil
}

// AdmitLoginState implements storage.LoginStateStore.
func (s *Store) AdmitLoginState(ctx context.Context, id string, data []byte, expiresAt time.Time, limits []storage.RateTake, now time.Time) (bool, error) {
	for _, l := range limits {
		if ok, err := s.TakeRate(ctx, l.Name, 1, l.Rate, l.Burst, now); err != nil || !ok {
			return false, err
		}
	}
	if err := s.CreateLoginState(ctx, id, data, expiresAt); err != nil {
		return false, err
	}
	return true, nil
}

// AdvanceLoginState implements storage.LoginStateStore.
func (s *Store) AdvanceLoginState(_ context.Context, id, newID string, tail []byte, expiresAt time.Time) ([]byte, error) {
	k, nk := sha256.Sum256([]byte(id)), sha256.Sum256([]byte(newID))
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	if _, ok := w.states[nk]; ok {
		return nil, fmt.Errorf("memory: login state: %w", storage.ErrAlreadyExists)
	}
	st, ok := w.states[k]
	delete(w.states, k)
	if !ok || !st.expiresAt.After(s.now()) {
		return nil, fmt.Errorf("memory: login state: %w", storage.ErrNotFound)
	}
	next := append(slices.Clone(st.data[:max(len(st.data)-1, 0)]), tail...)
	w.states[nk] = loginState{data: next, expiresAt: expiresAt}
	return st.data, nil
}

// CreateBrowserSession implements storage.BrowserSessionStore.
func (s *Store) CreateBrowserSession(_ context.Context, bs storage.BrowserSession) error {
	k := sha256.Sum256([]byte(bs.ID))
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	if _, ok := w.sessions[k]; ok {
		return fmt.Errorf("memory: browser session: %w", storage.ErrAlreadyExists)
	}
	bs.ID = ""
	bs.AMR = slices.Clone(bs.AMR)
	w.sessions[k] = bs
	return nil
}

// BrowserSession implements storage.BrowserSessionStore.
func (s *Store) BrowserSession(_ context.Context, id string) (storage.BrowserSession, error) {
	k := sha256.Sum256([]byte(id))
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	bs, ok := w.sessions[k]
	if !ok || !bs.ExpiresAt.After(s.now()) {
		return storage.BrowserSession{}, fmt.Errorf("memory: browser session: %w", storage.ErrNotFound)
	}
	bs.ID = id
	bs.AMR = slices.Clone(bs.AMR)
	return bs, nil
}

// BrowserSessionUser implements storage.BrowserSessionStore.
func (s *Store) BrowserSessionUser(ctx context.Context, id string) (storage.BrowserSession, storage.User, error) {
	bs, err := s.BrowserSession(ctx, id)
	if err != nil {
		return storage.BrowserSession{}, storage.User{}, err
	}
	u, err := s.User(ctx, bs.Subject)
	if err != nil {
		return storage.BrowserSession{}, storage.User{}, err
	}
	return bs, u, nil
}

// UserBrowserSessions implements storage.BrowserSessionStore.
func (s *Store) UserBrowserSessions(_ context.Context, subject string) ([]storage.BrowserSession, error) {
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	now := s.now()
	var out []storage.BrowserSession
	for _, bs := range w.sessions {
		if bs.Subject == subject && bs.ExpiresAt.After(now) {
			out = append(out, bs)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AuthTime.Before(out[j].AuthTime) })
	return out, nil
}

// DeleteBrowserSession implements storage.BrowserSessionStore.
func (s *Store) DeleteBrowserSession(_ context.Context, id string) error {
	k := sha256.Sum256([]byte(id))
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	delete(w.sessions, k)
	return nil
}

// Consent implements storage.ConsentStore.
func (s *Store) Consent(_ context.Context, subject, clientID string) (storage.Consent, error) {
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	c, ok := w.consents[consentKey{subject, clientID}]
	if !ok {
		return storage.Consent{}, fmt.Errorf("memory: consent of %q to %q: %w", subject, clientID, storage.ErrNotFound)
	}
	c.Scopes = slices.Clone(c.Scopes)
	return c, nil
}

// Consents implements storage.ConsentStore.
func (s *Store) Consents(_ context.Context, subject string) ([]storage.Consent, error) {
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	var out []storage.Consent
	for k, c := range w.consents {
		if k.subject == subject {
			c.Scopes = slices.Clone(c.Scopes)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ClientID < out[j].ClientID })
	return out, nil
}

// PutConsent implements storage.ConsentStore.
func (s *Store) PutConsent(_ context.Context, c storage.Consent) error {
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	c.Scopes = slices.Clone(c.Scopes)
	w.consents[consentKey{c.Subject, c.ClientID}] = c
	return nil
}

// DeleteConsent implements storage.ConsentStore.
func (s *Store) DeleteConsent(_ context.Context, subject, clientID string) error {
	// Lock order as in DeleteExpired: the store's lock, then web's.
	s.mu.Lock()
	defer s.mu.Unlock()
	w := &s.web
	w.mu.Lock()
	w.initLocked()
	delete(w.consents, consentKey{subject, clientID})
	w.mu.Unlock()
	s.revokeGrantsLocked(subject, clientID)
	return nil
}

// revokeGrantsLocked deletes the client's access tokens for subject and
// deactivates its refresh tokens and codes (the token half of
// DeleteConsent). s.mu must be held.
func (s *Store) revokeGrantsLocked(subject, clientID string) {
	for _, t := range []table{accessTokens, refreshTokens, codes} {
		for key, row := range s.tables[t] {
			var rec storage.RequestRecord
			if json.Unmarshal(row.data, &rec) != nil || rec.Subject != subject || rec.ClientID != clientID {
				continue
			}
			if t == accessTokens {
				delete(s.tables[t], key)
			} else {
				row.active = false
			}
		}
	}
}
