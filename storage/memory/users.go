package memory

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// appendEventsLocked records events, or leaves them to InTx (the memory
// store has no transactions; InTx keeps the events of its function until
// the function succeeds).
// s.mu must be held.
func (s *Store) appendEventsLocked(ctx context.Context, events ...storage.Event) error {
	now := s.now()
	for _, e := range events {
		e = storage.PrepareEvent(e, now)
		b, err := json.Marshal(e.Details)
		if err != nil {
			return fmt.Errorf("memory: append event %s: %w", e.Type, err)
		}
		e.Details = nil
		json.Unmarshal(b, &e.Details) // stored as the SQL backends store it
		if !storage.DeferEvent(ctx, e) {
			s.events = append(s.events, e)
		}
	}
	return nil
}

// AppendEvents implements storage.EventStore.
func (s *Store) AppendEvents(ctx context.Context, events ...storage.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendEventsLocked(ctx, events...)
}

// Events implements storage.EventStore.
func (s *Store) Events(_ context.Context, q storage.EventQuery) ([]storage.Event, string, error) {
	at, id, err := storage.ParseEventPageToken(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	limit := storage.PageSize(q.Limit)
	s.mu.RLock()
	var out []storage.Event
	for _, e := range s.events {
		switch {
		case q.Subject != "" && e.Subject != q.Subject,
			q.ClientID != "" && e.ClientID != q.ClientID,
			q.Type != "" && e.Type != q.Type,
			!q.Since.IsZero() && e.Time.Before(q.Since),
			!q.Until.IsZero() && !e.Time.Before(q.Until),
			id != "" && !(e.Time.Before(at) || (e.Time.Equal(at) && e.ID < id)):
			continue
		}
		out = append(out, e)
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b storage.Event) int {
		return cmp.Or(b.Time.Compare(a.Time), cmp.Compare(b.ID, a.ID))
	})
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = storage.EventPageToken(out[limit-1].Time, out[limit-1].ID)
	}
	return slices.Clone(out), next, nil
}

// DeleteEventsBefore implements storage.EventStore.
func (s *Store) DeleteEventsBefore(_ context.Context, before time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.events)
	s.events = slices.DeleteFunc(s.events, func(e storage.Event) bool { return e.Time.Before(before) })
	maps.DeleteFunc(s.rollups.counts, func(k rollKey, _ int64) bool { return !k.day.AddDate(0, 0, 1).After(before) })
	return int64(n - len(s.events)), nil
}

// LinkIdentity implements storage.UserStore, under one lock.
func (s *Store) LinkIdentity(ctx context.Context, req storage.LinkRequest) (storage.LinkResult, error) {
	if req.AppID == "" || req.OpenID == "" {
		return storage.LinkResult{}, fmt.Errorf("memory: link identity: empty app ID or OpenID")
	}
	now := norm(req.Now)
	if now.IsZero() {
		now = norm(s.now())
	}
	req.Now = now
	s.mu.Lock()
	defer s.mu.Unlock()

	ev := func(typ string, subject string, details map[string]any) storage.Event {
		return storage.Event{Time: now, Type: typ, Subject: subject, ClientID: req.ClientID, IP: req.IP, Details: details}
	}
	linked := func(subject, via string) storage.Event {
		return ev(storage.EventIdentityLinked, subject, map[string]any{"appid": req.AppID, "kind": req.Kind, "via": via})
	}
	key := identityKey{req.AppID, req.OpenID}
	if ident, ok := s.identities[key]; ok { // rule 1
		u := s.users[ident.Subject].Clone()
		if u.Disabled {
			return storage.LinkResult{User: u}, nil
		}
		if req.UnionID != "" && ident.UnionID == "" {
			holder, held := s.unionIDs[req.UnionID]
			if !held || holder == u.Subject {
				ident.UnionID = req.UnionID
				if u.UnionID == "" {
					u.UnionID = req.UnionID
					u.UpdatedAt = now
					s.unionIDs[req.UnionID] = u.Subject
				}
			}
		}
		if ident.Kind == "" {
			ident.Kind = req.Kind
		}
		s.identities[key] = ident
		return s.saveProfileLocked(ctx, u, req, storage.LinkResult{})
	}
	if req.UnionID != "" { // rule 2
		if sub, ok := s.unionIDs[req.UnionID]; ok {
			u := s.users[sub].Clone()
			if u.Disabled {
				return storage.LinkResult{User: u}, nil
			}
			s.identities[key] = storage.Identity{AppID: req.AppID, OpenID: req.OpenID, UnionID: req.UnionID, Subject: sub, Kind: req.Kind, CreatedAt: now}
			return s.saveProfileLocked(ctx, u, req, storage.LinkResult{Linked: true, Events: []storage.Event{linked(sub, "unionid")}})
		}
	}
	if req.NewSubject == "" && req.PhoneNumber != "" { // rule 3
		var match []string
		for sub, u := range s.users {
			if u.PhoneNumber == req.PhoneNumber && !u.Disabled && !s.hasIdentityLocked(sub, req.AppID) {
				match = append(match, sub)
			}
		}
		if len(match) == 1 {
			u := s.users[match[0]].Clone()
			if u.UnionID == "" && req.UnionID != "" {
				u.UnionID, u.UpdatedAt = req.UnionID, now
				s.unionIDs[req.UnionID] = u.Subject
			}
			s.identities[key] = storage.Identity{AppID: req.AppID, OpenID: req.OpenID, UnionID: req.UnionID, Subject: u.Subject, Kind: req.Kind, CreatedAt: now}
			return s.saveProfileLocked(ctx, u, req, storage.LinkResult{Linked: true, Events: []storage.Event{linked(u.Subject, "phone_number")}})
		}
	}
	if req.NewSubject == "" { // rule 5
		return storage.LinkResult{}, fmt.Errorf("memory: link identity: no user to link to: %w", storage.ErrNotFound)
	}
	// rule 4
	if _, ok := s.users[req.NewSubject]; ok {
		return storage.LinkResult{}, fmt.Errorf("memory: link identity: user %q: %w", req.NewSubject, storage.ErrAlreadyExists)
	}
	u := storage.User{Subject: req.NewSubject, UnionID: req.UnionID, Name: req.Name, Picture: req.Picture, CreatedAt: now, UpdatedAt: now}
	if req.PhoneNumber != "" {
		u.PhoneNumber, u.PhoneNumberVerified = req.PhoneNumber, true
	}
	s.users[u.Subject] = u
	if u.UnionID != "" {
		s.unionIDs[u.UnionID] = u.Subject
	}
	s.identities[key] = storage.Identity{AppID: req.AppID, OpenID: req.OpenID, UnionID: req.UnionID, Subject: u.Subject, Kind: req.Kind, CreatedAt: now}
	res := storage.LinkResult{User: u.Clone(), Created: true, Events: []storage.Event{
		ev(storage.EventUserCreated, u.Subject, map[string]any{"appid": req.AppID, "kind": req.Kind}),
		linked(u.Subject, "new_user"),
	}}
	if u.PhoneNumber != "" {
		res.Events = append(res.Events, ev(storage.EventPhoneBound, u.Subject, map[string]any{"appid": req.AppID}))
	}
	res.Events = prepareEvents(res.Events, now)
	return res, s.appendEventsLocked(ctx, res.Events...)
}

// prepareEvents gives events their IDs before they are stored, so that the
// caller sees the IDs stored.
func prepareEvents(events []storage.Event, now time.Time) []storage.Event {
	for i, e := range events {
		events[i] = storage.PrepareEvent(e, now)
	}
	return events
}

func (s *Store) hasIdentityLocked(subject, appID string) bool {
	for k, id := range s.identities {
		if k.appID == appID && id.Subject == subject {
			return true
		}
	}
	return false
}

// saveProfileLocked stores the non-empty name, picture and phone number of
// req on u, stores u, and records res's events (with phone_bound for a new
// number).
func (s *Store) saveProfileLocked(ctx context.Context, u storage.User, req storage.LinkRequest, res storage.LinkResult) (storage.LinkResult, error) {
	if req.Name != "" && req.Name != u.Name {
		u.Name, u.UpdatedAt = req.Name, req.Now
	}
	if req.Picture != "" && req.Picture != u.Picture {
		u.Picture, u.UpdatedAt = req.Picture, req.Now
	}
	if req.PhoneNumber != "" && (u.PhoneNumber != req.PhoneNumber || !u.PhoneNumberVerified) {
		u.PhoneNumber, u.PhoneNumberVerified, u.UpdatedAt = req.PhoneNumber, true, req.Now
		res.Events = append(res.Events, storage.Event{Time: req.Now, Type: storage.EventPhoneBound, Subject: u.Subject, ClientID: req.ClientID, IP: req.IP,
			Details: map[string]any{"appid": req.AppID}})
	}
	s.users[u.Subject] = u
	res.User = u.Clone()
	res.Events = prepareEvents(res.Events, req.Now)
	return res, s.appendEventsLocked(ctx, res.Events...)
}

// RecordLogin implements storage.UserStore.
func (s *Store) RecordLogin(ctx context.Context, l storage.Login) error {
	at := norm(l.At)
	if at.IsZero() {
		at = norm(s.now())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[l.Subject]
	if !ok || u.Disabled {
		return fmt.Errorf("memory: record login of %q: %w", l.Subject, storage.ErrUserDisabled)
	}
	u.LastLoginAt = at
	s.users[l.Subject] = u
	if l.AppID != "" {
		k := identityKey{l.AppID, l.OpenID}
		if id, ok := s.identities[k]; ok {
			id.LastLoginAt = at
			s.identities[k] = id
		}
	}
	return s.appendEventsLocked(ctx, storage.Event{ID: l.EventID, Time: at, Type: storage.EventLogin, Subject: l.Subject, ClientID: l.ClientID, IP: l.IP, Details: l.Details})
}

// CreateUser implements storage.UserStore.
func (s *Store) CreateUser(_ context.Context, u storage.User) error {
	if u.Subject == "" {
		return fmt.Errorf("memory: create user: empty subject")
	}
	u = normUser(u)
	if u.CreatedAt.IsZero() {
		u.CreatedAt = norm(s.now())
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.Subject]; ok {
		return fmt.Errorf("memory: create user %q: %w", u.Subject, storage.ErrAlreadyExists)
	}
	if err := s.checkUniqueLocked(u); err != nil {
		return fmt.Errorf("memory: create user %q: %w", u.Subject, err)
	}
	s.users[u.Subject] = u
	if u.UnionID != "" {
		s.unionIDs[u.UnionID] = u.Subject
	}
	return nil
}

// normUser returns u as the SQL backends store it.
func normUser(u storage.User) storage.User {
	u = u.Clone()
	u.CreatedAt, u.UpdatedAt, u.LastLoginAt = norm(u.CreatedAt), norm(u.UpdatedAt), norm(u.LastLoginAt)
	slices.Sort(u.Roles)
	u.Roles = slices.Compact(u.Roles)
	if len(u.Roles) == 0 {
		u.Roles = nil
	}
	return u
}

// checkUniqueLocked reports ErrAlreadyExists if another user holds u's
// UnionID or ExternalID. s.mu must be held.
func (s *Store) checkUniqueLocked(u storage.User) error {
	if holder, ok := s.unionIDs[u.UnionID]; ok && u.UnionID != "" && holder != u.Subject {
		return fmt.Errorf("unionid: %w", storage.ErrAlreadyExists)
	}
	if u.ExternalID != "" {
		for sub, o := range s.users {
			if sub != u.Subject && o.ExternalID == u.ExternalID {
				return fmt.Errorf("external id: %w", storage.ErrAlreadyExists)
			}
		}
	}
	return nil
}

// User implements storage.UserStore.
func (s *Store) User(_ context.Context, subject string) (storage.User, error) {
	s.mu.RLock()
	u, ok := s.users[subject]
	s.mu.RUnlock()
	if !ok {
		return storage.User{}, fmt.Errorf("memory: user %q: %w", subject, storage.ErrNotFound)
	}
	return u.Clone(), nil
}

// UpdateUser implements storage.UserStore.
func (s *Store) UpdateUser(_ context.Context, subject string, update func(storage.User) (storage.User, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.users[subject]
	if !ok {
		return fmt.Errorf("memory: update user %q: %w", subject, storage.ErrNotFound)
	}
	u, err := update(old.Clone())
	if err != nil {
		return fmt.Errorf("memory: update user %q: %w", subject, err)
	}
	if u.Subject != subject {
		return fmt.Errorf("memory: update user %q: the subject cannot change", subject)
	}
	if u.Disabled != old.Disabled {
		return fmt.Errorf("memory: update user %q: disabled changes through SetUserDisabled", subject)
	}
	u = normUser(u)
	if err := s.checkUniqueLocked(u); err != nil {
		return fmt.Errorf("memory: update user %q: %w", subject, err)
	}
	if u.UnionID != old.UnionID {
		delete(s.unionIDs, old.UnionID)
		if u.UnionID != "" {
			s.unionIDs[u.UnionID] = subject
		}
	}
	u.CreatedAt, u.LastLoginAt = old.CreatedAt, old.LastLoginAt
	if u.UpdatedAt.Equal(old.UpdatedAt) || u.UpdatedAt.IsZero() {
		u.UpdatedAt = norm(s.now())
	}
	s.users[subject] = u
	return nil
}

// SetUserDisabled implements storage.UserStore.
func (s *Store) SetUserDisabled(_ context.Context, subject string, disabled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[subject]
	if !ok {
		return fmt.Errorf("memory: set user %q disabled: %w", subject, storage.ErrNotFound)
	}
	u.Disabled, u.UpdatedAt = disabled, norm(s.now())
	s.users[subject] = u
	if disabled {
		s.endSessionsLocked(subject)
	}
	return nil
}

// EndUserSessions implements storage.UserStore.
func (s *Store) EndUserSessions(_ context.Context, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endSessionsLocked(subject)
	return nil
}

// endSessionsLocked must be called with s.mu held.
func (s *Store) endSessionsLocked(subject string) {
	now := s.now()
	s.enqueueLogouts(func(_ [2]string, c sessionClient) bool { return c.subject == subject }, now, now.Add(storage.LogoutRetryFor))
	for _, t := range []table{accessTokens, refreshTokens, codes} {
		for key, row := range s.tables[t] {
			if rowSubject(row) != subject {
				continue
			}
			if t == accessTokens {
				delete(s.tables[t], key)
			} else {
				row.active = false
			}
		}
	}
	s.devices.forSubject(subject, func(d *storage.DeviceAuth) bool {
		if d.Status == storage.DeviceApproved {
			d.Status = storage.DeviceDenied
		}
		return false
	})
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, bs := range w.sessions {
		if bs.Subject == subject {
			delete(w.sessions, k)
		}
	}
}

func rowSubject(row *tokenRow) string {
	var rec storage.RequestRecord
	json.Unmarshal(row.data, &rec)
	return rec.Subject
}

// DeleteUser implements storage.UserStore.
func (s *Store) DeleteUser(_ context.Context, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[subject]
	if !ok {
		return fmt.Errorf("memory: delete user %q: %w", subject, storage.ErrNotFound)
	}
	delete(s.users, subject)
	delete(s.unionIDs, u.UnionID)
	now := s.now()
	s.enqueueLogouts(func(_ [2]string, c sessionClient) bool { return c.subject == subject }, now, now.Add(storage.LogoutRetryFor))
	sent := map[identityKey]bool{}
	for k, id := range s.identities {
		if id.Subject == subject {
			delete(s.identities, k)
			sent[k] = true
		}
	}
	s.pushes.deleteSent(sent)
	// Rate limits named after the user end in "/" + subject.
	for name := range s.rates {
		if strings.HasSuffix(name, "/"+subject) {
			delete(s.rates, name)
		}
	}
	var rotated []string
	for key, row := range s.tables[refreshTokens] {
		if rowSubject(row) == subject {
			rotated = append(rotated, key)
		}
	}
	s.successors.delete(rotated)
	for k := range s.sessionKeys {
		if k.id == subject {
			delete(s.sessionKeys, k)
		}
	}
	for _, t := range s.tables {
		for key, row := range t {
			if rowSubject(row) == subject {
				delete(t, key)
			}
		}
	}
	s.devices.forSubject(subject, func(*storage.DeviceAuth) bool { return true })
	w := &s.web
	w.mu.Lock()
	defer w.mu.Unlock()
	w.initLocked()
	for k, bs := range w.sessions {
		if bs.Subject == subject {
			delete(w.sessions, k)
		}
	}
	for k := range w.consents {
		if k.subject == subject {
			delete(w.consents, k)
		}
	}
	return nil
}

// SearchUsers implements storage.UserStore.
func (s *Store) SearchUsers(_ context.Context, q storage.UserQuery) ([]storage.User, string, error) {
	after, err := storage.ParseUserPageToken(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	limit := storage.PageSize(q.Limit)
	s.mu.RLock()
	var bySubject map[string]bool
	if q.OpenID != "" {
		bySubject = map[string]bool{}
		for k, id := range s.identities {
			if k.id == q.OpenID {
				bySubject[id.Subject] = true
			}
		}
	}
	var subs []string
	for sub, u := range s.users {
		switch {
		case after != "" && sub <= after,
			q.PhoneNumber != "" && u.PhoneNumber != q.PhoneNumber,
			q.UnionID != "" && u.UnionID != q.UnionID,
			q.ExternalID != "" && u.ExternalID != q.ExternalID,
			bySubject != nil && !bySubject[sub],
			q.Prefix != "" && !strings.HasPrefix(u.Name, q.Prefix) && !strings.HasPrefix(sub, q.Prefix):
			continue
		}
		subs = append(subs, sub)
	}
	slices.Sort(subs)
	next := ""
	if len(subs) > limit {
		subs = subs[:limit]
		next = storage.UserPageToken(subs[limit-1])
	}
	out := make([]storage.User, len(subs))
	for i, sub := range subs {
		out[i] = s.users[sub].Clone()
	}
	s.mu.RUnlock()
	return out, next, nil
}

// Identity implements storage.UserStore.
func (s *Store) Identity(_ context.Context, appID, openID string) (storage.Identity, error) {
	s.mu.RLock()
	id, ok := s.identities[identityKey{appID, openID}]
	s.mu.RUnlock()
	if !ok {
		return storage.Identity{}, fmt.Errorf("memory: identity: %w", storage.ErrNotFound)
	}
	return id, nil
}

// Identities implements storage.UserStore.
func (s *Store) Identities(_ context.Context, subject string) ([]storage.Identity, error) {
	var out []storage.Identity
	s.mu.RLock()
	for _, id := range s.identities {
		if id.Subject == subject {
			out = append(out, id)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b storage.Identity) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.OpenID, b.OpenID))
	})
	return out, nil
}

// IdentitiesOf implements storage.UserStore.
func (s *Store) IdentitiesOf(_ context.Context, subjects []string) (map[string][]storage.Identity, error) {
	want := make(map[string]bool, len(subjects))
	for _, sub := range subjects {
		want[sub] = true
	}
	out := map[string][]storage.Identity{}
	s.mu.RLock()
	for _, id := range s.identities {
		if want[id.Subject] {
			out[id.Subject] = append(out[id.Subject], id)
		}
	}
	s.mu.RUnlock()
	for _, ids := range out {
		slices.SortFunc(ids, func(a, b storage.Identity) int {
			return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.OpenID, b.OpenID))
		})
	}
	return out, nil
}

// UnlinkIdentity implements storage.UserStore.
func (s *Store) UnlinkIdentity(_ context.Context, subject, appID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for k, id := range s.identities {
		if id.Subject == subject && k.appID == appID {
			delete(s.identities, k)
			s.pushes.deleteSent(map[identityKey]bool{k: true})
			found = true
		}
	}
	if !found {
		return fmt.Errorf("memory: unlink identity of %q from %q: %w", appID, subject, storage.ErrNotFound)
	}
	delete(s.sessionKeys, identityKey{appID, subject})
	u := s.users[subject]
	if u.UnionID == "" {
		return nil
	}
	for _, id := range s.identities {
		if id.Subject == subject && id.UnionID == u.UnionID {
			return nil
		}
	}
	delete(s.unionIDs, u.UnionID)
	u.UnionID = ""
	s.users[subject] = u
	return nil
}

// forSubject calls fn for every device authorization of subject and
// deletes those for which it reports true.
func (d *devices) forSubject(subject string, fn func(*storage.DeviceAuth) (remove bool)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, a := range d.byHash {
		if a.Subject == subject && fn(a) {
			delete(d.byHash, k)
			delete(d.byUser, a.UserCode)
		}
	}
}
