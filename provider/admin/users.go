package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// Paths of the user and event API (SPEC §3, §10).
const (
	pathUsers        = "/admin/users"
	pathUser         = "/admin/users/{sub}"
	pathUserIdentity = "/admin/users/{sub}/identities/{appid}"
	pathUserSessions = "/admin/users/{sub}/sessions"
	pathEvents       = "/admin/events"
)

// User is the user document of the admin API (SPEC §10). Times are RFC
// 3339 in UTC; a time that never happened is null.
type User struct {
	Sub                 string     `json:"sub"`
	Name                string     `json:"name"`
	Picture             string     `json:"picture"`
	PhoneNumber         string     `json:"phone_number"`
	PhoneNumberVerified bool       `json:"phone_number_verified"`
	ExternalID          string     `json:"external_id"`
	Roles               []string   `json:"roles"`
	Disabled            bool       `json:"disabled"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	LastLoginAt         *time.Time `json:"last_login_at"`
	Identities          []Identity `json:"identities"`
	// Consents and Sessions come with GET /admin/users/{sub} only.
	Consents []Consent `json:"consents,omitempty"`
	Sessions []Session `json:"sessions,omitempty"`
}

// Identity is a WeChat identity in a User.
type Identity struct {
	AppID       string     `json:"appid"`
	Kind        string     `json:"kind"`
	OpenID      string     `json:"openid"`
	UnionID     string     `json:"unionid,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

// Consent is a standing consent in a User.
type Consent struct {
	ClientID  string    `json:"client_id"`
	Scope     string    `json:"scope"`
	GrantedAt time.Time `json:"granted_at"`
}

// Session is a browser session in a User.
type Session struct {
	AuthTime  time.Time `json:"auth_time"`
	ExpiresAt time.Time `json:"expires_at"`
}

// UserList is the answer of GET /admin/users.
type UserList struct {
	Users         []User `json:"users"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// Event is an audit event of GET /admin/events.
type Event struct {
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Type     string         `json:"type"`
	Sub      string         `json:"sub,omitempty"`
	ClientID string         `json:"client_id,omitempty"`
	IP       string         `json:"ip,omitempty"`
	Details  map[string]any `json:"details"`
}

// EventList is the answer of GET /admin/events.
type EventList struct {
	Events        []Event `json:"events"`
	NextPageToken string  `json:"next_page_token,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func userDoc(u storage.User, ids []storage.Identity) User {
	out := User{
		Sub: u.Subject, Name: u.Name, Picture: u.Picture, PhoneNumber: u.PhoneNumber, PhoneNumberVerified: u.PhoneNumberVerified,
		ExternalID: u.ExternalID, Roles: u.Roles, Disabled: u.Disabled, CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
		LastLoginAt: timePtr(u.LastLoginAt), Identities: []Identity{},
	}
	if out.Roles == nil {
		out.Roles = []string{}
	}
	for _, id := range ids {
		out.Identities = append(out.Identities, Identity{
			AppID: id.AppID, Kind: id.Kind, OpenID: id.OpenID, UnionID: id.UnionID,
			CreatedAt: id.CreatedAt.UTC(), LastLoginAt: timePtr(id.LastLoginAt),
		})
	}
	return out
}

// fieldError is a validation error that names the field at fault, as the
// client API's errors do.
type fieldError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Field       string `json:"field"`
}

func writeFieldError(w http.ResponseWriter, field, format string, args ...any) {
	writeJSON(w, http.StatusBadRequest, fieldError{Error: "invalid_request", Description: field + ": " + fmt.Sprintf(format, args...), Field: field})
}

// e164 is the form phone numbers take (ITU-T E.164 with its +).
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

func (h *Handler) users() storage.Storage { return h.cfg.Users }

func (h *Handler) audit() *provider.Audit {
	if h.cfg.Audit != nil {
		return h.cfg.Audit
	}
	return &provider.Audit{Storage: h.cfg.Users, Logger: h.log}
}

// listUsers answers GET /admin/users.
func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := limitParam(w, q)
	if !ok {
		return
	}
	us, next, err := h.users().SearchUsers(r.Context(), storage.UserQuery{
		PhoneNumber: q.Get("phone_number"), OpenID: q.Get("openid"), UnionID: q.Get("unionid"),
		ExternalID: q.Get("external_id"), Prefix: q.Get("q"), Limit: limit, PageToken: q.Get("page_token"),
	})
	if errors.Is(err, storage.ErrBadPageToken) {
		writeFieldError(w, "page_token", "not a page token this API returned")
		return
	}
	if err != nil {
		h.serverError(w, r, "search users", err)
		return
	}
	subjects := make([]string, len(us))
	for i, u := range us {
		subjects[i] = u.Subject
	}
	// The page's identities in one query, not one per user.
	ids, err := h.users().IdentitiesOf(r.Context(), subjects)
	if err != nil {
		h.serverError(w, r, "search users", err)
		return
	}
	out := UserList{Users: make([]User, 0, len(us)), NextPageToken: next}
	for _, u := range us {
		out.Users = append(out.Users, userDoc(u, ids[u.Subject]))
	}
	writeJSON(w, http.StatusOK, out)
}

func limitParam(w http.ResponseWriter, q url.Values) (int, bool) {
	s := q.Get("limit")
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > storage.MaxPageSize {
		writeFieldError(w, "limit", "must be a whole number from 1 to %d", storage.MaxPageSize)
		return 0, false
	}
	return n, true
}

// getUser answers GET /admin/users/{sub}: the user with identities,
// consents and active browser sessions.
func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) {
	sub := mux.Vars(r)["sub"]
	ctx := r.Context()
	u, ok := h.loadUser(w, r, sub)
	if !ok {
		return
	}
	ids, err := h.users().Identities(ctx, sub)
	if err != nil {
		h.serverError(w, r, "get user", err)
		return
	}
	doc := userDoc(u, ids)
	cs, err := h.users().Consents(ctx, sub)
	if err != nil {
		h.serverError(w, r, "get user", err)
		return
	}
	for _, c := range cs {
		doc.Consents = append(doc.Consents, Consent{ClientID: c.ClientID, Scope: joinScopes(c.Scopes), GrantedAt: c.GrantedAt.UTC()})
	}
	bss, err := h.users().UserBrowserSessions(ctx, sub)
	if err != nil {
		h.serverError(w, r, "get user", err)
		return
	}
	for _, bs := range bss {
		doc.Sessions = append(doc.Sessions, Session{AuthTime: bs.AuthTime.UTC(), ExpiresAt: bs.ExpiresAt.UTC()})
	}
	writeJSON(w, http.StatusOK, doc)
}

func joinScopes(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

func (h *Handler) loadUser(w http.ResponseWriter, r *http.Request, sub string) (storage.User, bool) {
	u, err := h.users().User(r.Context(), sub)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "No user with this sub.")
		return u, false
	}
	if err != nil {
		h.serverError(w, r, "get user", err)
		return u, false
	}
	return u, true
}

// userFields are the fields POST and PATCH may set.
type userFields struct {
	Name        *string   `json:"name"`
	Picture     *string   `json:"picture"`
	PhoneNumber *string   `json:"phone_number"`
	ExternalID  *string   `json:"external_id"`
	Roles       *[]string `json:"roles"`
	Disabled    *bool     `json:"disabled"`
}

// readOnly are user-document fields the server keeps.
var readOnly = []string{"sub", "phone_number_verified", "created_at", "updated_at", "last_login_at", "identities", "consents", "sessions"}

// decodeFields reads a user document or merge patch (RFC 7396): a member
// set to null clears the field. It names the field of the first problem.
func decodeFields(w http.ResponseWriter, r *http.Request) (userFields, []string, bool) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	if err := dec.Decode(&raw); err != nil || raw == nil {
		msg := "invalid JSON."
		if err != nil {
			msg = provider.JSONProblem(err)
		}
		writeError(w, http.StatusBadRequest, "invalid_request", "The body is not a JSON object: "+msg)
		return userFields{}, nil, false
	}
	var f userFields
	var set []string
	empty := ""
	for k, v := range raw {
		null := string(bytes.TrimSpace(v)) == "null"
		var err error
		switch k {
		case "name":
			f.Name, err = &empty, nil
			if !null {
				f.Name = new(string)
				err = json.Unmarshal(v, f.Name)
			}
		case "picture":
			f.Picture = &empty
			if !null {
				f.Picture = new(string)
				err = json.Unmarshal(v, f.Picture)
			}
		case "phone_number":
			f.PhoneNumber = &empty
			if !null {
				f.PhoneNumber = new(string)
				if err = json.Unmarshal(v, f.PhoneNumber); err == nil && *f.PhoneNumber != "" && !e164.MatchString(*f.PhoneNumber) {
					writeFieldError(w, k, "must be in E.164 form, e.g. +8613800138000")
					return f, nil, false
				}
			}
		case "external_id":
			f.ExternalID = &empty
			if !null {
				f.ExternalID = new(string)
				err = json.Unmarshal(v, f.ExternalID)
			}
		case "roles":
			f.Roles = &[]string{}
			if !null {
				if err = json.Unmarshal(v, f.Roles); err == nil {
					for _, role := range *f.Roles {
						if role != storage.RoleAdmin && role != storage.RoleViewer {
							writeFieldError(w, k, "%q is not a role (admin, viewer)", role)
							return f, nil, false
						}
					}
				}
			}
		case "disabled":
			if null {
				writeFieldError(w, k, "must be true or false")
				return f, nil, false
			}
			f.Disabled = new(bool)
			err = json.Unmarshal(v, f.Disabled)
		default:
			if slices.Contains(readOnly, k) {
				writeFieldError(w, k, "is kept by the server and cannot be set")
			} else {
				writeFieldError(w, k, "is not a field of a user")
			}
			return f, nil, false
		}
		if err != nil {
			writeFieldError(w, k, "has the wrong JSON type")
			return f, nil, false
		}
		set = append(set, k)
	}
	for k, s := range map[string]*string{"name": f.Name, "picture": f.Picture, "external_id": f.ExternalID} {
		if s != nil && len(*s) > 256 {
			writeFieldError(w, k, "is longer than 256 characters")
			return f, nil, false
		}
	}
	slices.Sort(set)
	return f, set, true
}

// apply sets the profile fields of f on u (not Disabled).
func (f userFields) apply(u storage.User) storage.User {
	if f.Name != nil {
		u.Name = *f.Name
	}
	if f.Picture != nil {
		u.Picture = *f.Picture
	}
	if f.PhoneNumber != nil && *f.PhoneNumber != u.PhoneNumber {
		// A number an operator enters is not verified until WeChat
		// confirms it (a phone code from the person).
		u.PhoneNumber, u.PhoneNumberVerified = *f.PhoneNumber, false
	}
	if f.ExternalID != nil {
		u.ExternalID = *f.ExternalID
	}
	if f.Roles != nil {
		u.Roles = slices.Compact(slices.Sorted(slices.Values(*f.Roles)))
	}
	return u
}

// createUser answers POST /admin/users: a pre-provisioned user (201).
func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) {
	f, set, ok := decodeFields(w, r)
	if !ok {
		return
	}
	now := h.cfg.Now().UTC()
	u := f.apply(storage.User{Subject: provider.NewSubject(), CreatedAt: now, UpdatedAt: now})
	if f.Disabled != nil {
		u.Disabled = *f.Disabled
	}
	err := h.audit().RecordWith(r.Context(), func(ctx context.Context) error {
		return h.users().CreateUser(ctx, u)
	}, storage.Event{Type: storage.EventUserCreated, Subject: u.Subject, Details: map[string]any{"by": Operator(r), "fields": set}})
	if errors.Is(err, storage.ErrAlreadyExists) {
		writeJSON(w, http.StatusConflict, fieldError{Error: "invalid_request", Description: "external_id: another user has it", Field: "external_id"})
		return
	}
	if err != nil {
		h.serverError(w, r, "create user", err)
		return
	}
	w.Header().Set("Location", pathUsers+"/"+url.PathEscape(u.Subject))
	writeJSON(w, http.StatusCreated, userDoc(u, nil))
}

// patchUser answers PATCH /admin/users/{sub}, a JSON merge patch (RFC
// 7396) of name, picture, phone_number, external_id, roles and disabled.
// Disabling also ends every session of the user, at once on every replica.
func (h *Handler) patchUser(w http.ResponseWriter, r *http.Request) {
	sub := mux.Vars(r)["sub"]
	f, set, ok := decodeFields(w, r)
	if !ok {
		return
	}
	old, ok := h.loadUser(w, r, sub)
	if !ok {
		return
	}
	var events []storage.Event
	profile := slices.DeleteFunc(slices.Clone(set), func(k string) bool { return k == "disabled" })
	if len(profile) > 0 {
		events = append(events, storage.Event{Type: storage.EventUserUpdated, Subject: sub, Details: map[string]any{"by": Operator(r), "fields": profile}})
	}
	toggle := f.Disabled != nil && *f.Disabled != old.Disabled
	if toggle {
		typ := storage.EventUserEnabled
		if *f.Disabled {
			typ = storage.EventUserDisabled
		}
		events = append(events, storage.Event{Type: typ, Subject: sub, Details: map[string]any{"by": Operator(r)}})
	}
	err := h.audit().RecordWith(r.Context(), func(ctx context.Context) error {
		if len(profile) > 0 {
			err := h.users().UpdateUser(ctx, sub, func(u storage.User) (storage.User, error) {
				u = f.apply(u)
				u.UpdatedAt = h.cfg.Now().UTC()
				return u, nil
			})
			if err != nil {
				return err
			}
		}
		if toggle {
			return h.users().SetUserDisabled(ctx, sub, *f.Disabled)
		}
		return nil
	}, events...)
	switch {
	case errors.Is(err, storage.ErrAlreadyExists):
		writeJSON(w, http.StatusConflict, fieldError{Error: "invalid_request", Description: "external_id: another user has it", Field: "external_id"})
		return
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "No user with this sub.")
		return
	case err != nil:
		h.serverError(w, r, "update user", err)
		return
	}
	h.getUser(w, r)
}

// deleteUser answers DELETE /admin/users/{sub}: erasure (204).
func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) {
	sub := mux.Vars(r)["sub"]
	h.change(w, r, func(ctx context.Context) error { return h.users().DeleteUser(ctx, sub) },
		storage.Event{Type: storage.EventUserDeleted, Subject: sub, Details: map[string]any{"by": Operator(r)}})
}

// unlinkIdentity answers DELETE /admin/users/{sub}/identities/{appid}.
func (h *Handler) unlinkIdentity(w http.ResponseWriter, r *http.Request) {
	sub, appID := mux.Vars(r)["sub"], mux.Vars(r)["appid"]
	h.change(w, r, func(ctx context.Context) error { return h.users().UnlinkIdentity(ctx, sub, appID) },
		storage.Event{Type: storage.EventIdentityUnlinked, Subject: sub, Details: map[string]any{"by": Operator(r), "appid": appID}})
}

// endSessions answers DELETE /admin/users/{sub}/sessions: sign out
// everywhere (browser sessions end, tokens are revoked).
func (h *Handler) endSessions(w http.ResponseWriter, r *http.Request) {
	sub := mux.Vars(r)["sub"]
	if _, ok := h.loadUser(w, r, sub); !ok {
		return
	}
	h.change(w, r, func(ctx context.Context) error { return h.users().EndUserSessions(ctx, sub) },
		storage.Event{Type: storage.EventSessionsEnded, Subject: sub, Details: map[string]any{"by": Operator(r)}})
}

// change runs fn with its event and answers 204, or 404 for ErrNotFound.
func (h *Handler) change(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context) error, ev storage.Event) {
	err := h.audit().RecordWith(r.Context(), fn, ev)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "No such user or identity.")
	case err != nil:
		h.serverError(w, r, ev.Type, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// listEvents answers GET /admin/events, newest first.
func (h *Handler) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, ok := limitParam(w, q)
	if !ok {
		return
	}
	eq := storage.EventQuery{Subject: q.Get("sub"), ClientID: q.Get("client_id"), Type: q.Get("type"), Limit: limit, PageToken: q.Get("page_token")}
	for _, p := range []struct {
		name string
		to   *time.Time
	}{{"since", &eq.Since}, {"until", &eq.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				writeFieldError(w, p.name, "must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
				return
			}
			*p.to = t
		}
	}
	evs, next, err := h.users().Events(r.Context(), eq)
	if errors.Is(err, storage.ErrBadPageToken) {
		writeFieldError(w, "page_token", "not a page token this API returned")
		return
	}
	if err != nil {
		h.serverError(w, r, "list events", err)
		return
	}
	out := EventList{Events: make([]Event, 0, len(evs)), NextPageToken: next}
	for _, e := range evs {
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		out.Events = append(out.Events, Event{ID: e.ID, Time: e.Time.UTC(), Type: e.Type, Sub: e.Subject, ClientID: e.ClientID, IP: e.IP, Details: e.Details})
	}
	writeJSON(w, http.StatusOK, out)
}
