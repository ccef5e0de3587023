package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wxoidc/wxoidc/storage"
)

const userColumns = "subject, union_id, name, picture, phone_number, phone_number_verified, external_id, roles, disabled, version, created_at, updated_at, last_login_at"

// prefixed returns columns (comma-separated) each prefixed with p.
func prefixed(p, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = p + c
	}
	return strings.Join(cols, ", ")
}

// linkedUser reads an identity's unionid and kind and its user in one
// round trip.
var linkedUser = "SELECT i.union_id, i.kind, " + prefixed("u.", userColumns) +
	" FROM identities i JOIN users u ON u.subject = i.subject WHERE i.app_id = ? AND i.open_id = ?"

// userRow holds the columns of a user row (userColumns).
type userRow struct {
	subject                    string
	unionID, externalID        sql.NullString
	name, picture, phoneNumber string
	verified, disabled         bool
	roles                      string
	version, created, updated  int64
	lastLogin                  int64
}

func (r *userRow) dest() []any {
	return []any{&r.subject, &r.unionID, &r.name, &r.picture, &r.phoneNumber, &r.verified, &r.externalID, &r.roles, &r.disabled,
		&r.version, &r.created, &r.updated, &r.lastLogin}
}

func (r *userRow) user() storage.User {
	var roles []string
	if r.roles != "" {
		roles = strings.Fields(r.roles)
	}
	return storage.User{
		Subject:             r.subject,
		UnionID:             r.unionID.String,
		Name:                r.name,
		Picture:             r.picture,
		PhoneNumber:         r.phoneNumber,
		PhoneNumberVerified: r.verified,
		ExternalID:          r.externalID.String,
		Roles:               roles,
		Disabled:            r.disabled,
		CreatedAt:           fromMicros(r.created),
		UpdatedAt:           fromMicros(r.updated),
		LastLoginAt:         fromMicros(r.lastLogin),
	}
}

// nullUserRow is a userRow from an outer join: all NULL when there is no
// user.
type nullUserRow struct {
	subject, unionID, name, picture, phoneNumber, externalID, roles sql.NullString
	verified, disabled                                              sql.NullBool
	version, created, updated, lastLogin                            sql.NullInt64
}

func (r *nullUserRow) dest() []any {
	return []any{&r.subject, &r.unionID, &r.name, &r.picture, &r.phoneNumber, &r.verified, &r.externalID, &r.roles, &r.disabled,
		&r.version, &r.created, &r.updated, &r.lastLogin}
}

func (r *nullUserRow) user() storage.User {
	return (&userRow{
		subject: r.subject.String, unionID: r.unionID, name: r.name.String, picture: r.picture.String,
		phoneNumber: r.phoneNumber.String, verified: r.verified.Bool, externalID: r.externalID, roles: r.roles.String,
		disabled: r.disabled.Bool, version: r.version.Int64, created: r.created.Int64, updated: r.updated.Int64,
		lastLogin: r.lastLogin.Int64,
	}).user()
}

// userWhere loads the user matching the condition cond (with one
// placeholder).
func (s *Store) userWhere(ctx context.Context, cond string, arg any) (storage.User, int64, error) {
	var r userRow
	if err := s.queryRow(ctx, "SELECT "+userColumns+" FROM users WHERE "+cond, []any{arg}, r.dest()...); err != nil {
		return storage.User{}, 0, err
	}
	return r.user(), r.version, nil
}

// User implements storage.UserStore.
func (s *Store) User(ctx context.Context, subject string) (storage.User, error) {
	u, _, err := s.userWhere(ctx, "subject = ?", subject)
	if err != nil {
		return storage.User{}, s.wrap(fmt.Sprintf("user %q", subject), err)
	}
	return u, nil
}

// rolesColumn is how roles are stored: sorted, space-separated.
func rolesColumn(roles []string) string {
	r := slices.Clone(roles)
	slices.Sort(r)
	return strings.Join(slices.Compact(r), " ")
}

// CreateUser implements storage.UserStore.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	op := fmt.Sprintf("create user %q", u.Subject)
	if u.Subject == "" {
		return fmt.Errorf("%s: create user: empty subject", s.d.Name)
	}
	now := s.now()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	_, err := s.exec(ctx, "INSERT INTO users ("+userColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)",
		u.Subject, nullIfEmpty(u.UnionID), u.Name, u.Picture, u.PhoneNumber, u.PhoneNumberVerified, nullIfEmpty(u.ExternalID),
		rolesColumn(u.Roles), u.Disabled, micros(u.CreatedAt), micros(u.UpdatedAt), micros(u.LastLoginAt))
	return s.wrap(op, err)
}

// UpdateUser implements storage.UserStore with compare-and-swap on the row's
// version.
func (s *Store) UpdateUser(ctx context.Context, subject string, update func(storage.User) (storage.User, error)) error {
	op := fmt.Sprintf("update user %q", subject)
	for range maxCASAttempts {
		old, version, err := s.userWhere(ctx, "subject = ?", subject)
		if err != nil {
			return s.wrap(op, err)
		}
		u, err := update(old.Clone())
		if err != nil {
			return fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
		}
		if u.Subject != subject {
			return fmt.Errorf("%s: %s: the subject cannot change", s.d.Name, op)
		}
		if u.Disabled != old.Disabled {
			return fmt.Errorf("%s: %s: disabled changes through SetUserDisabled", s.d.Name, op)
		}
		if u.UpdatedAt.Equal(old.UpdatedAt) || u.UpdatedAt.IsZero() {
			u.UpdatedAt = s.now()
		}
		n, err := s.execN(ctx, "UPDATE users SET union_id = ?, name = ?, picture = ?, phone_number = ?, phone_number_verified = ?, external_id = ?, roles = ?, updated_at = ?, version = version + 1 WHERE subject = ? AND version = ?",
			nullIfEmpty(u.UnionID), u.Name, u.Picture, u.PhoneNumber, u.PhoneNumberVerified, nullIfEmpty(u.ExternalID), rolesColumn(u.Roles),
			micros(u.UpdatedAt), subject, version)
		if err != nil {
			return s.wrap(op, err)
		}
		if n == 1 {
			return nil
		}
	}
	return fmt.Errorf("%s: %s: %w", s.d.Name, op, storage.ErrConflict)
}

// LinkIdentity implements storage.UserStore in one transaction. Two
// concurrent first logins of one person collide on a unique key (the
// identity's or the unionid's); the loser's transaction is retried and then
// finds the winner's user.
func (s *Store) LinkIdentity(ctx context.Context, req storage.LinkRequest) (storage.LinkResult, error) {
	if req.AppID == "" || req.OpenID == "" {
		return storage.LinkResult{}, fmt.Errorf("%s: link identity: empty app ID or OpenID", s.d.Name)
	}
	if req.Now.IsZero() {
		req.Now = s.now()
	}
	req.Now = fromMicros(micros(req.Now))
	// Most logins are returning users whose identity is linked already and
	// who bring nothing new (a web login's nickname and picture are most
	// often those stored): answer those from the read pool, without taking
	// the single writer (SQLite) or a row lock (PostgreSQL).
	if s.state(ctx) == nil {
		var (
			identUnionID sql.NullString
			kind         string
			r            userRow
		)
		err := s.queryRow(ctx, linkedUser, []any{req.AppID, req.OpenID}, append([]any{&identUnionID, &kind}, r.dest()...)...)
		if err == nil {
			u := r.user()
			nothingNew := (req.UnionID == "" || identUnionID.Valid) && (req.Kind == "" || kind != "") &&
				(req.PhoneNumber == "" || (u.PhoneNumber == req.PhoneNumber && u.PhoneNumberVerified)) &&
				(req.Name == "" || req.Name == u.Name) && (req.Picture == "" || req.Picture == u.Picture)
			if u.Disabled || nothingNew {
				return storage.LinkResult{User: u}, nil
			}
		}
	}
	var res storage.LinkResult
	err := s.inTx(ctx, "link identity", true, func(ctx context.Context) error {
		var err error
		res, err = s.linkIdentity(ctx, req)
		return err
	})
	if err != nil {
		return storage.LinkResult{}, err
	}
	return res, nil
}

func (s *Store) linkIdentity(ctx context.Context, req storage.LinkRequest) (storage.LinkResult, error) {
	const op = "link identity"
	ev := func(typ string, subject string, details map[string]any) storage.Event {
		return storage.Event{Time: req.Now, Type: typ, Subject: subject, ClientID: req.ClientID, IP: req.IP, Details: details}
	}
	linked := func(subject, via string) storage.Event {
		return ev(storage.EventIdentityLinked, subject, map[string]any{"appid": req.AppID, "kind": req.Kind, "via": via})
	}
	var (
		identUnionID sql.NullString
		subject      string
		kind         string
	)
	err := s.queryRow(ctx, "SELECT union_id, subject, kind FROM identities WHERE app_id = ? AND open_id = ?",
		[]any{req.AppID, req.OpenID}, &identUnionID, &subject, &kind)
	switch {
	case err == nil: // rule 1
		u, _, err := s.userWhere(ctx, "subject = ?", subject)
		if err != nil {
			return storage.LinkResult{}, s.wrap(op, err)
		}
		if u.Disabled {
			return storage.LinkResult{User: u}, nil
		}
		old := u.Clone()
		if req.UnionID != "" && !identUnionID.Valid {
			var holder string
			err := s.queryRow(ctx, "SELECT subject FROM users WHERE union_id = ?", []any{req.UnionID}, &holder)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return storage.LinkResult{}, s.wrap(op, err)
			}
			if errors.Is(err, sql.ErrNoRows) || holder == u.Subject {
				if _, err := s.exec(ctx, "UPDATE identities SET union_id = ? WHERE app_id = ? AND open_id = ?", req.UnionID, req.AppID, req.OpenID); err != nil {
					return storage.LinkResult{}, s.wrap(op, err)
				}
				if u.UnionID == "" {
					u.UnionID = req.UnionID
				}
			}
		}
		if kind == "" && req.Kind != "" {
			if _, err := s.exec(ctx, "UPDATE identities SET kind = ? WHERE app_id = ? AND open_id = ?", req.Kind, req.AppID, req.OpenID); err != nil {
				return storage.LinkResult{}, s.wrap(op, err)
			}
		}
		res := storage.LinkResult{}
		res.User, res.Events, err = s.saveProfile(ctx, old, u, req, nil)
		return res, err
	case !errors.Is(err, sql.ErrNoRows):
		return storage.LinkResult{}, s.wrap(op, err)
	}

	if req.UnionID != "" { // rule 2
		u, _, err := s.userWhere(ctx, "union_id = ?", req.UnionID)
		switch {
		case err == nil:
			if u.Disabled {
				return storage.LinkResult{User: u}, nil
			}
			if err := s.insertIdentity(ctx, req, u.Subject); err != nil {
				return storage.LinkResult{}, err
			}
			res := storage.LinkResult{Linked: true}
			res.User, res.Events, err = s.saveProfile(ctx, u, u.Clone(), req, []storage.Event{linked(u.Subject, "unionid")})
			return res, err
		case !errors.Is(err, sql.ErrNoRows):
			return storage.LinkResult{}, s.wrap(op, err)
		}
	}

	if req.NewSubject == "" && req.PhoneNumber != "" { // rule 3
		var subjects []string
		err := s.query(ctx, "SELECT subject FROM users u WHERE phone_number = ? AND NOT disabled AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.subject = u.subject AND i.app_id = ?) LIMIT 2",
			[]any{req.PhoneNumber, req.AppID}, func(rows *sql.Rows) error {
				var sub string
				if err := rows.Scan(&sub); err != nil {
					return err
				}
				subjects = append(subjects, sub)
				return nil
			})
		if err != nil {
			return storage.LinkResult{}, s.wrap(op, err)
		}
		if len(subjects) == 1 {
			u, _, err := s.userWhere(ctx, "subject = ?", subjects[0])
			if err != nil {
				return storage.LinkResult{}, s.wrap(op, err)
			}
			if err := s.insertIdentity(ctx, req, u.Subject); err != nil {
				return storage.LinkResult{}, err
			}
			nu := u.Clone()
			if nu.UnionID == "" {
				nu.UnionID = req.UnionID // rule 2 found no holder
			}
			res := storage.LinkResult{Linked: true}
			res.User, res.Events, err = s.saveProfile(ctx, u, nu, req, []storage.Event{linked(u.Subject, "phone_number")})
			return res, err
		}
	}

	if req.NewSubject == "" { // rule 5
		return storage.LinkResult{}, fmt.Errorf("%s: %s: no user to link to: %w", s.d.Name, op, storage.ErrNotFound)
	}
	// rule 4
	u := storage.User{Subject: req.NewSubject, UnionID: req.UnionID, Name: req.Name, Picture: req.Picture, CreatedAt: req.Now, UpdatedAt: req.Now}
	if req.PhoneNumber != "" {
		u.PhoneNumber, u.PhoneNumberVerified = req.PhoneNumber, true
	}
	if err := s.CreateUser(ctx, u); err != nil {
		return storage.LinkResult{}, err
	}
	if err := s.insertIdentity(ctx, req, u.Subject); err != nil {
		return storage.LinkResult{}, err
	}
	res := storage.LinkResult{User: u, Created: true, Events: []storage.Event{
		ev(storage.EventUserCreated, u.Subject, map[string]any{"appid": req.AppID, "kind": req.Kind}),
		linked(u.Subject, "new_user"),
	}}
	if u.PhoneNumber != "" {
		res.Events = append(res.Events, ev(storage.EventPhoneBound, u.Subject, map[string]any{"appid": req.AppID}))
	}
	res.Events = prepareEvents(res.Events, req.Now)
	if err := s.AppendEvents(ctx, res.Events...); err != nil {
		return storage.LinkResult{}, err
	}
	return res, nil
}

// prepareEvents gives events their IDs before they are stored, so that the
// caller sees the IDs stored.
func prepareEvents(events []storage.Event, now time.Time) []storage.Event {
	for i, e := range events {
		events[i] = storage.PrepareEvent(e, now)
	}
	return events
}

func (s *Store) insertIdentity(ctx context.Context, req storage.LinkRequest, subject string) error {
	_, err := s.exec(ctx, "INSERT INTO identities (app_id, open_id, union_id, subject, kind, created_at, last_login_at) VALUES (?, ?, ?, ?, ?, ?, 0)",
		req.AppID, req.OpenID, nullIfEmpty(req.UnionID), subject, req.Kind, micros(req.Now))
	return s.wrap("link identity: create identity", err)
}

// saveProfile applies req's non-empty name, picture and phone number to u,
// writes u if it differs from old, and records events (with a phone_bound
// event for a new number).
func (s *Store) saveProfile(ctx context.Context, old, u storage.User, req storage.LinkRequest, events []storage.Event) (storage.User, []storage.Event, error) {
	if req.Name != "" {
		u.Name = req.Name
	}
	if req.Picture != "" {
		u.Picture = req.Picture
	}
	if req.PhoneNumber != "" && (u.PhoneNumber != req.PhoneNumber || !u.PhoneNumberVerified) {
		u.PhoneNumber, u.PhoneNumberVerified = req.PhoneNumber, true
		events = append(events, storage.Event{Time: req.Now, Type: storage.EventPhoneBound, Subject: u.Subject, ClientID: req.ClientID, IP: req.IP,
			Details: map[string]any{"appid": req.AppID}})
	}
	if u.UnionID != old.UnionID || u.Name != old.Name || u.Picture != old.Picture || u.PhoneNumber != old.PhoneNumber || u.PhoneNumberVerified != old.PhoneNumberVerified {
		u.UpdatedAt = req.Now
		_, err := s.exec(ctx, "UPDATE users SET union_id = ?, name = ?, picture = ?, phone_number = ?, phone_number_verified = ?, updated_at = ?, version = version + 1 WHERE subject = ?",
			nullIfEmpty(u.UnionID), u.Name, u.Picture, u.PhoneNumber, u.PhoneNumberVerified, micros(u.UpdatedAt), u.Subject)
		if err != nil {
			return storage.User{}, nil, s.wrap("link identity: update user", err)
		}
	}
	events = prepareEvents(events, req.Now)
	if err := s.AppendEvents(ctx, events...); err != nil {
		return storage.User{}, nil, err
	}
	return u, events, nil
}

const (
	recordLogin         = "UPDATE users SET last_login_at = ? WHERE subject = ? AND NOT disabled"
	recordIdentityLogin = "UPDATE identities SET last_login_at = ? WHERE app_id = ? AND open_id = ?"
)

// RecordLogin implements storage.UserStore. In a write set its statements
// are queued; otherwise they run in a transaction of their own.
func (s *Store) RecordLogin(ctx context.Context, l storage.Login) error {
	if s.state(ctx) == nil {
		return s.inTx(ctx, "record login", false, func(ctx context.Context) error { return s.RecordLogin(ctx, l) })
	}
	if l.At.IsZero() {
		l.At = s.now()
	}
	guard := fmt.Errorf("%s: record login of %q: %w", s.d.Name, l.Subject, storage.ErrUserDisabled)
	switch {
	case l.AppID != "" && s.d.RecordIdentityLogin != "":
		if err := s.write(ctx, "record login", guard, s.d.RecordIdentityLogin, micros(l.At), l.Subject, l.AppID, l.OpenID); err != nil {
			return err
		}
	default:
		q := recordLogin
		if s.d.RecordLogin != "" {
			q = s.d.RecordLogin
		}
		if err := s.write(ctx, "record login", guard, q, micros(l.At), l.Subject); err != nil {
			return err
		}
		if l.AppID != "" {
			if err := s.write(ctx, "record login", nil, recordIdentityLogin, micros(l.At), l.AppID, l.OpenID); err != nil {
				return err
			}
		}
	}
	return s.AppendEvents(ctx, storage.Event{ID: l.EventID, Time: l.At, Type: storage.EventLogin, Subject: l.Subject, ClientID: l.ClientID, IP: l.IP, Details: l.Details})
}

// SetUserDisabled implements storage.UserStore.
func (s *Store) SetUserDisabled(ctx context.Context, subject string, disabled bool) error {
	op := fmt.Sprintf("set user %q disabled", subject)
	return s.inTx(ctx, op, false, func(ctx context.Context) error {
		n, err := s.execN(ctx, "UPDATE users SET disabled = ?, updated_at = ?, version = version + 1 WHERE subject = ?", disabled, micros(s.now()), subject)
		if err != nil {
			return s.wrap(op, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: %s: %w", s.d.Name, op, storage.ErrNotFound)
		}
		if disabled {
			return s.endSessions(ctx, subject)
		}
		return nil
	})
}

// EndUserSessions implements storage.UserStore. The token tables are
// scanned by subject rather than given another index on the token
// endpoint's write path: signing someone out everywhere is rare.
func (s *Store) EndUserSessions(ctx context.Context, subject string) error {
	return s.inTx(ctx, "end user sessions", false, func(ctx context.Context) error { return s.endSessions(ctx, subject) })
}

func (s *Store) endSessions(ctx context.Context, subject string) error {
	if err := s.enqueueSubjectLogouts(ctx, subject); err != nil {
		return err
	}
	for _, q := range []string{
		"DELETE FROM browser_sessions WHERE subject = ?",
		"DELETE FROM oauth2_access WHERE subject = ?",
		"UPDATE oauth2_refresh SET active = FALSE WHERE subject = ? AND active",
		"UPDATE oauth2_code SET active = FALSE WHERE subject = ? AND active",
		// A device or scan login approved but not yet redeemed.
		"UPDATE device_auths SET status = 'denied' WHERE subject = ? AND status = 'approved'",
	} {
		if _, err := s.exec(ctx, q, subject); err != nil {
			return s.wrap("end user sessions", err)
		}
	}
	return nil
}

// DeleteUser implements storage.UserStore.
func (s *Store) DeleteUser(ctx context.Context, subject string) error {
	op := fmt.Sprintf("delete user %q", subject)
	return s.inTx(ctx, op, false, func(ctx context.Context) error {
		// What is found through the identities and refresh tokens goes
		// first, while they are there (identities cascade with the user).
		for _, q := range []string{
			"DELETE FROM push_events WHERE EXISTS (SELECT 1 FROM identities i WHERE i.subject = ? AND i.app_id = push_events.app_id AND i.open_id = push_events.open_id)",
			"DELETE FROM refresh_successors WHERE signature IN (SELECT signature FROM oauth2_refresh WHERE subject = ?)",
		} {
			if _, err := s.exec(ctx, q, subject); err != nil {
				return s.wrap(op, err)
			}
		}
		n, err := s.execN(ctx, "DELETE FROM users WHERE subject = ?", subject)
		if err != nil {
			return s.wrap(op, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: %s: %w", s.d.Name, op, storage.ErrNotFound)
		}
		if err := s.enqueueSubjectLogouts(ctx, subject); err != nil {
			return err
		}
		// Rate limits named after the user end in "/" + subject.
		suffix := "/" + subject
		if _, err := s.exec(ctx, "DELETE FROM rate_limits WHERE substr(name, length(name) - ? + 1) = ?", int64(utf8.RuneCountInString(suffix)), suffix); err != nil {
			return s.wrap(op, err)
		}
		tables := []string{"identities", "wechat_session_keys", "consents", "browser_sessions", "device_auths"}
		for _, a := range artifacts {
			tables = append(tables, a.table)
		}
		for _, t := range tables {
			if _, err := s.exec(ctx, "DELETE FROM "+t+" WHERE subject = ?", subject); err != nil {
				return s.wrap(op, err)
			}
		}
		return nil
	})
}

// SearchUsers implements storage.UserStore.
func (s *Store) SearchUsers(ctx context.Context, q storage.UserQuery) ([]storage.User, string, error) {
	after, err := storage.ParseUserPageToken(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	c := s.d.Collate
	var (
		conds []string
		args  []any
	)
	add := func(cond string, a ...any) {
		conds = append(conds, cond)
		args = append(args, a...)
	}
	if q.PhoneNumber != "" {
		add("phone_number = ?", q.PhoneNumber)
	}
	if q.UnionID != "" {
		add("union_id = ?", q.UnionID)
	}
	if q.ExternalID != "" {
		add("external_id = ?", q.ExternalID)
	}
	if q.OpenID != "" {
		add("subject IN (SELECT subject FROM identities WHERE open_id = ?)", q.OpenID)
	}
	if q.Prefix != "" {
		hi := q.Prefix + "\U0010FFFF"
		add("((name"+c+" >= ? AND name"+c+" < ?) OR (subject"+c+" >= ? AND subject"+c+" < ?))", q.Prefix, hi, q.Prefix, hi)
	}
	if after != "" {
		add("subject"+c+" > ?", after)
	}
	limit := storage.PageSize(q.Limit)
	query := "SELECT " + userColumns + " FROM users"
	if len(conds) > 0 {
		query += " WHERE " + strings.Join(conds, " AND ")
	}
	query += fmt.Sprintf(" ORDER BY subject%s LIMIT %d", c, limit+1)
	var out []storage.User
	err = s.query(ctx, query, args, func(rows *sql.Rows) error {
		var r userRow
		if err := rows.Scan(r.dest()...); err != nil {
			return err
		}
		out = append(out, r.user())
		return nil
	})
	if err != nil {
		return nil, "", s.wrap("search users", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = storage.UserPageToken(out[limit-1].Subject)
	}
	return out, next, nil
}

const identityColumns = "app_id, open_id, union_id, subject, kind, created_at, last_login_at"

type identityRow struct {
	appID, openID    string
	unionID          sql.NullString
	subject, kind    string
	created, lastLog int64
}

func (r *identityRow) dest() []any {
	return []any{&r.appID, &r.openID, &r.unionID, &r.subject, &r.kind, &r.created, &r.lastLog}
}

func (r *identityRow) identity() storage.Identity {
	return storage.Identity{AppID: r.appID, OpenID: r.openID, UnionID: r.unionID.String, Subject: r.subject, Kind: r.kind,
		CreatedAt: fromMicros(r.created), LastLoginAt: fromMicros(r.lastLog)}
}

// Identity implements storage.UserStore.
func (s *Store) Identity(ctx context.Context, appID, openID string) (storage.Identity, error) {
	var r identityRow
	err := s.queryRow(ctx, "SELECT "+identityColumns+" FROM identities WHERE app_id = ? AND open_id = ?", []any{appID, openID}, r.dest()...)
	if err != nil {
		return storage.Identity{}, s.wrap("identity", err)
	}
	return r.identity(), nil
}

// Identities implements storage.UserStore.
func (s *Store) Identities(ctx context.Context, subject string) ([]storage.Identity, error) {
	var out []storage.Identity
	err := s.query(ctx, "SELECT "+identityColumns+" FROM identities WHERE subject = ? ORDER BY app_id, open_id", []any{subject}, func(rows *sql.Rows) error {
		var r identityRow
		if err := rows.Scan(r.dest()...); err != nil {
			return err
		}
		out = append(out, r.identity())
		return nil
	})
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("identities of %q", subject), err)
	}
	return out, nil
}

// IdentitiesOf implements storage.UserStore: one SELECT … WHERE subject
// IN (…), through the (subject, app_id) index.
func (s *Store) IdentitiesOf(ctx context.Context, subjects []string) (map[string][]storage.Identity, error) {
	out := map[string][]storage.Identity{}
	if len(subjects) == 0 {
		return out, nil
	}
	if len(subjects) > storage.MaxPageSize {
		return nil, fmt.Errorf("%s: identities of %d users: at most %d at once", s.d.Name, len(subjects), storage.MaxPageSize)
	}
	// The list is padded (repeating the last subject) to a power of two,
	// so that pages of any size make 11 statements to prepare, not 1000.
	n := 1
	for n < len(subjects) {
		n *= 2
	}
	args := make([]any, n)
	for i := range args {
		args[i] = subjects[min(i, len(subjects)-1)]
	}
	q := "SELECT " + identityColumns + " FROM identities WHERE subject IN (?" + strings.Repeat(", ?", n-1) + ") ORDER BY subject, app_id, open_id"
	err := s.query(ctx, q, args, func(rows *sql.Rows) error {
		var r identityRow
		if err := rows.Scan(r.dest()...); err != nil {
			return err
		}
		out[r.subject] = append(out[r.subject], r.identity())
		return nil
	})
	if err != nil {
		return nil, s.wrap(fmt.Sprintf("identities of %d users", len(subjects)), err)
	}
	return out, nil
}

// UnlinkIdentity implements storage.UserStore.
func (s *Store) UnlinkIdentity(ctx context.Context, subject, appID string) error {
	op := fmt.Sprintf("unlink identity of %q from %q", appID, subject)
	return s.inTx(ctx, op, false, func(ctx context.Context) error {
		_, err := s.exec(ctx, "DELETE FROM push_events WHERE app_id = ? AND open_id IN (SELECT open_id FROM identities WHERE subject = ? AND app_id = ?)", appID, subject, appID)
		if err != nil {
			return s.wrap(op, err)
		}
		n, err := s.execN(ctx, "DELETE FROM identities WHERE subject = ? AND app_id = ?", subject, appID)
		if err != nil {
			return s.wrap(op, err)
		}
		if n == 0 {
			return fmt.Errorf("%s: %s: %w", s.d.Name, op, storage.ErrNotFound)
		}
		if _, err := s.exec(ctx, "DELETE FROM wechat_session_keys WHERE subject = ? AND app_id = ?", subject, appID); err != nil {
			return s.wrap(op, err)
		}
		_, err = s.exec(ctx, "UPDATE users SET union_id = NULL, version = version + 1 WHERE subject = ? AND union_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.subject = users.subject AND i.union_id = users.union_id)", subject)
		return s.wrap(op, err)
	})
}
