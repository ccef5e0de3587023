package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wxoidc/wxoidc/storage"
)

const userColumns = "subject, union_id, name, picture, phone_number, version, created_at, updated_at"

// linkedUser reads an identity's unionid and its user in one round trip.
const linkedUser = "SELECT i.union_id, u.subject, u.union_id, u.name, u.picture, u.phone_number, u.version, u.created_at, u.updated_at " +
	"FROM identities i JOIN users u ON u.subject = i.subject WHERE i.app_id = ? AND i.open_id = ?"

// userRow holds the columns of a user row (userColumns).
type userRow struct {
	subject                    string
	unionID                    sql.NullString
	name, picture, phoneNumber string
	version, created, updated  int64
}

func (r *userRow) dest() []any {
	return []any{&r.subject, &r.unionID, &r.name, &r.picture, &r.phoneNumber, &r.version, &r.created, &r.updated}
}

func (r *userRow) user() storage.User {
	return storage.User{
		Subject:     r.subject,
		UnionID:     r.unionID.String,
		Name:        r.name,
		Picture:     r.picture,
		PhoneNumber: r.phoneNumber,
		CreatedAt:   fromMicros(r.created),
		UpdatedAt:   fromMicros(r.updated),
	}
}

// nullUserRow is a userRow from an outer join: all NULL when there is no
// user.
type nullUserRow struct {
	subject, unionID, name, picture, phoneNumber sql.NullString
	version, created, updated                    sql.NullInt64
}

func (r *nullUserRow) dest() []any {
	return []any{&r.subject, &r.unionID, &r.name, &r.picture, &r.phoneNumber, &r.version, &r.created, &r.updated}
}

func (r *nullUserRow) user() storage.User {
	return (&userRow{
		subject: r.subject.String, unionID: r.unionID, name: r.name.String, picture: r.picture.String,
		phoneNumber: r.phoneNumber.String, version: r.version.Int64, created: r.created.Int64, updated: r.updated.Int64,
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

// UpdateUser implements storage.UserStore with compare-and-swap on the row's
// version. A UnionID held by another user fails with
// storage.ErrAlreadyExists. CreatedAt is kept; an unchanged UpdatedAt is set
// to the current time.
func (s *Store) UpdateUser(ctx context.Context, subject string, update func(storage.User) (storage.User, error)) error {
	op := fmt.Sprintf("update user %q", subject)
	for range maxCASAttempts {
		old, version, err := s.userWhere(ctx, "subject = ?", subject)
		if err != nil {
			return s.wrap(op, err)
		}
		u, err := update(old)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", s.d.Name, op, err)
		}
		if u.Subject != subject {
			return fmt.Errorf("%s: %s: the subject cannot change", s.d.Name, op)
		}
		if u.UpdatedAt.Equal(old.UpdatedAt) || u.UpdatedAt.IsZero() {
			u.UpdatedAt = s.now()
		}
		n, err := s.execN(ctx, "UPDATE users SET union_id = ?, name = ?, picture = ?, phone_number = ?, updated_at = ?, version = version + 1 WHERE subject = ? AND version = ?",
			nullIfEmpty(u.UnionID), u.Name, u.Picture, u.PhoneNumber, micros(u.UpdatedAt), subject, version)
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
func (s *Store) LinkIdentity(ctx context.Context, req storage.LinkRequest) (storage.User, bool, error) {
	if req.AppID == "" || req.OpenID == "" {
		return storage.User{}, false, fmt.Errorf("%s: link identity: empty app ID or OpenID", s.d.Name)
	}
	if req.Now.IsZero() {
		req.Now = s.now()
	}
	// Most logins are returning users whose identity is linked already and
	// who bring nothing new: answer those from the read pool, without taking
	// the single writer (SQLite) or a row lock (PostgreSQL).
	if s.state(ctx) == nil && req.Name == "" && req.Picture == "" {
		var (
			identUnionID sql.NullString
			r            userRow
		)
		err := s.queryRow(ctx, linkedUser, []any{req.AppID, req.OpenID}, append([]any{&identUnionID}, r.dest()...)...)
		if err == nil && (req.UnionID == "" || identUnionID.Valid) {
			return r.user(), false, nil
		}
	}
	var (
		user    storage.User
		created bool
	)
	err := s.inTx(ctx, "link identity", true, func(ctx context.Context) error {
		var err error
		user, created, err = s.linkIdentity(ctx, req)
		return err
	})
	if err != nil {
		return storage.User{}, false, err
	}
	return user, created, nil
}

func (s *Store) linkIdentity(ctx context.Context, req storage.LinkRequest) (storage.User, bool, error) {
	const op = "link identity"
	var identUnionID sql.NullString
	var subject string
	err := s.queryRow(ctx, "SELECT union_id, subject FROM identities WHERE app_id = ? AND open_id = ?",
		[]any{req.AppID, req.OpenID}, &identUnionID, &subject)
	switch {
	case err == nil: // rule 1
		u, _, err := s.userWhere(ctx, "subject = ?", subject)
		if err != nil {
			return storage.User{}, false, s.wrap(op, err)
		}
		old := u
		if req.UnionID != "" && !identUnionID.Valid {
			var holder string
			err := s.queryRow(ctx, "SELECT subject FROM users WHERE union_id = ?", []any{req.UnionID}, &holder)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return storage.User{}, false, s.wrap(op, err)
			}
			if errors.Is(err, sql.ErrNoRows) || holder == u.Subject {
				if _, err := s.exec(ctx, "UPDATE identities SET union_id = ? WHERE app_id = ? AND open_id = ?", req.UnionID, req.AppID, req.OpenID); err != nil {
					return storage.User{}, false, s.wrap(op, err)
				}
				if u.UnionID == "" {
					u.UnionID = req.UnionID
				}
			}
		}
		u, err = s.saveProfile(ctx, old, u, req)
		return u, false, err
	case !errors.Is(err, sql.ErrNoRows):
		return storage.User{}, false, s.wrap(op, err)
	}

	if req.UnionID != "" { // rule 2
		u, _, err := s.userWhere(ctx, "union_id = ?", req.UnionID)
		switch {
		case err == nil:
			if err := s.insertIdentity(ctx, req, u.Subject); err != nil {
				return storage.User{}, false, err
			}
			u, err = s.saveProfile(ctx, u, u, req)
			return u, false, err
		case !errors.Is(err, sql.ErrNoRows):
			return storage.User{}, false, s.wrap(op, err)
		}
	}

	// rule 3
	if req.NewSubject == "" {
		return storage.User{}, false, fmt.Errorf("%s: %s: empty new subject", s.d.Name, op)
	}
	u := storage.User{Subject: req.NewSubject, UnionID: req.UnionID, Name: req.Name, Picture: req.Picture, CreatedAt: fromMicros(micros(req.Now)), UpdatedAt: fromMicros(micros(req.Now))}
	_, err = s.exec(ctx, "INSERT INTO users ("+userColumns+") VALUES (?, ?, ?, ?, '', 1, ?, ?)",
		u.Subject, nullIfEmpty(u.UnionID), u.Name, u.Picture, micros(u.CreatedAt), micros(u.UpdatedAt))
	if err != nil {
		return storage.User{}, false, s.wrap(op+": create user", err)
	}
	if err := s.insertIdentity(ctx, req, u.Subject); err != nil {
		return storage.User{}, false, err
	}
	return u, true, nil
}

func (s *Store) insertIdentity(ctx context.Context, req storage.LinkRequest, subject string) error {
	_, err := s.exec(ctx, "INSERT INTO identities (app_id, open_id, union_id, subject, created_at) VALUES (?, ?, ?, ?, ?)",
		req.AppID, req.OpenID, nullIfEmpty(req.UnionID), subject, micros(req.Now))
	return s.wrap("link identity: create identity", err)
}

// saveProfile applies req's non-empty name and picture to u and writes u
// if it differs from old.
func (s *Store) saveProfile(ctx context.Context, old, u storage.User, req storage.LinkRequest) (storage.User, error) {
	if req.Name != "" {
		u.Name = req.Name
	}
	if req.Picture != "" {
		u.Picture = req.Picture
	}
	if u == old {
		return u, nil
	}
	u.UpdatedAt = fromMicros(micros(req.Now))
	_, err := s.exec(ctx, "UPDATE users SET union_id = ?, name = ?, picture = ?, updated_at = ?, version = version + 1 WHERE subject = ?",
		nullIfEmpty(u.UnionID), u.Name, u.Picture, micros(u.UpdatedAt), u.Subject)
	if err != nil {
		return storage.User{}, s.wrap("link identity: update user", err)
	}
	return u, nil
}

const identityColumns = "app_id, open_id, union_id, subject, created_at"

type identityRow struct {
	appID, openID string
	unionID       sql.NullString
	subject       string
	created       int64
}

func (r *identityRow) dest() []any {
	return []any{&r.appID, &r.openID, &r.unionID, &r.subject, &r.created}
}

func (r *identityRow) identity() storage.Identity {
	return storage.Identity{AppID: r.appID, OpenID: r.openID, UnionID: r.unionID.String, Subject: r.subject, CreatedAt: fromMicros(r.created)}
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
