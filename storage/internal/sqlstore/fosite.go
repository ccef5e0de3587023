package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/openid"

	"github.com/wxoidc/wxoidc/storage"
)

// neverExpires is the expires_at of a refresh token whose session sets no
// expiry: fosite treats such a token as valid forever.
var neverExpires = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// defaultLifetime is how long any other artifact without an expiry in its
// session is kept after its request time.
const defaultLifetime = 30 * 24 * time.Hour

// deleteBatch is how many rows one DeleteExpired statement removes: a
// short statement, so that the token endpoint's writes (on SQLite, behind
// the one writer connection) wait little for the janitor.
const deleteBatch = 1000

// pace waits, after a janitor statement that took took, as long again
// (at least a millisecond), so that a janitor with millions of rows to go
// takes at most half of the database's writer and of a core instead of
// all of it; it returns ctx's error if ctx ends first.
func pace(ctx context.Context, took time.Duration) error {
	t := time.NewTimer(max(took, time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// deleteBatches runs query (a DELETE of at most deleteBatch rows) until it
// deletes fewer, pacing full batches, and returns how many rows went.
func (s *Store) deleteBatches(ctx context.Context, op, query string, args ...any) (int64, error) {
	var total int64
	for {
		start := time.Now()
		n, err := s.execN(ctx, query, args...)
		if err != nil {
			return total, s.wrap(op, err)
		}
		total += n
		if n < deleteBatch {
			return total, nil
		}
		if err := pace(ctx, time.Since(start)); err != nil {
			return total, s.wrap(op, err)
		}
	}
}

// artifact is one table of fosite requests.
type artifact struct {
	table string // also the error context
	tt    fosite.TokenType
	// queries, built once by newArtifact
	insert, get, del string
}

func newArtifact(table string, tt fosite.TokenType) *artifact {
	return &artifact{
		table:  table,
		tt:     tt,
		insert: "INSERT INTO " + table + " (signature, request_id, client_id, subject, requested_at, expires_at, request, active) VALUES (?, ?, ?, ?, ?, ?, ?, TRUE)",
		// The client comes along (one round trip instead of two); the
		// LEFT JOIN keeps a request whose client is gone.
		get: "SELECT a.active, a.expires_at, a.request, c.id, c.secret_hash, c.metadata, c.version, c.created_at, c.updated_at FROM " +
			table + " a LEFT JOIN clients c ON c.id = a.client_id WHERE a.signature = ?",
		del: "DELETE FROM " + table + " WHERE signature = ?",
	}
}

var (
	codes         = newArtifact("oauth2_code", fosite.AuthorizeCode)
	accessTokens  = newArtifact("oauth2_access", fosite.AccessToken)
	refreshTokens = newArtifact("oauth2_refresh", fosite.RefreshToken)
	pkceRequests  = newArtifact("oauth2_pkce", fosite.AuthorizeCode)
	oidcSessions  = newArtifact("oauth2_oidc", fosite.AuthorizeCode)
	parRequests   = newArtifact("oauth2_par", fosite.PushedAuthorizeRequestContext)
	artifacts     = []*artifact{codes, accessTokens, refreshTokens, pkceRequests, oidcSessions, parRequests}
)

const (
	invalidateCode         = "UPDATE oauth2_code SET active = FALSE WHERE signature = ? AND active"
	invalidateCodeSessions = "UPDATE oauth2_code SET active = FALSE, pkce_form = NULL, oidc_form = NULL WHERE signature = ? AND active"
	rotateRefresh          = "UPDATE oauth2_refresh SET active = FALSE WHERE signature = ? AND active"
	revokeRefresh          = "UPDATE oauth2_refresh SET active = FALSE WHERE request_id = ? AND active"
	deleteAccessByRequest  = "DELETE FROM oauth2_access WHERE request_id = ?"
)

// getRefreshWithUser is refreshTokens.get with the token's user (for
// storage.Prefetch): a refresh reads the token, its client and its user in
// one round trip.
var getRefreshWithUser = strings.Replace(refreshTokens.get, " FROM oauth2_refresh a LEFT JOIN clients c ON c.id = a.client_id",
	", "+prefixed("u.", userColumns)+
		" FROM oauth2_refresh a LEFT JOIN clients c ON c.id = a.client_id LEFT JOIN users u ON u.subject = a.subject", 1)

// getCodeWithSessions is codes.get with the code's PKCE session (same
// key) and OpenID Connect session (keyed by the raw code: the first
// placeholder), for storage.Prefetch: an exchange reads the three in one
// round trip. The sessions are either kept in the code's row (pkce_form,
// oidc_key and oidc_form, see foldSession) or rows of their own tables.
var getCodeWithSessions = strings.Replace(codes.get, " FROM oauth2_code a LEFT JOIN clients c ON c.id = a.client_id",
	", p.active, p.expires_at, p.request, o.active, o.expires_at, o.request, a.pkce_form, a.oidc_key, a.oidc_form"+
		" FROM oauth2_code a LEFT JOIN clients c ON c.id = a.client_id"+
		" LEFT JOIN "+pkceRequests.table+" p ON p.signature = a.signature LEFT JOIN "+oidcSessions.table+" o ON o.signature = ?", 1)

// insertCodeFolded is codes.insert with the code's PKCE and OpenID Connect
// sessions in the row (see foldSession): their form values (NULL: no such
// session) and the OpenID Connect session's key.
const insertCodeFolded = "INSERT INTO oauth2_code (signature, request_id, client_id, subject, requested_at, expires_at, request, active, pkce_form, oidc_key, oidc_form) VALUES (?, ?, ?, ?, ?, ?, ?, TRUE, ?, ?, ?)"

// getFoldedPKCE and getFoldedOIDC are pkceRequests.get and oidcSessions.get
// for a read without the code's (no storage.Prefetch): the session's own
// row, else the one kept in its code's row, with the form that replaces
// the code's request's. Both placeholders are the session's key.
var (
	getFoldedPKCE = foldedGet(pkceRequests, "a.signature = ? AND a.pkce_form IS NOT NULL", "a.pkce_form")
	getFoldedOIDC = foldedGet(oidcSessions, "a.oidc_key = ? AND a.oidc_form IS NOT NULL", "a.oidc_form")
)

func foldedGet(a *artifact, where, form string) string {
	own := strings.Replace(a.get, " FROM ", ", CAST(NULL AS TEXT) FROM ", 1)
	folded := strings.Replace(strings.Replace(codes.get, " FROM ", ", "+form+" FROM ", 1), "a.signature = ?", where, 1)
	return own + " UNION ALL " + folded
}

// Deletes of a session kept in its code's row: they clear its form (a
// HOT update of the row, whose indexed columns do not change).
const (
	deleteFoldedPKCE = "UPDATE oauth2_code SET pkce_form = NULL WHERE signature = ? AND pkce_form IS NOT NULL"
	deleteFoldedOIDC = "UPDATE oauth2_code SET oidc_form = NULL WHERE oidc_key = ? AND oidc_form IS NOT NULL"
)

// absentRow is kept (PutRow) for a row that a prefetching read found
// missing, or that was deleted since: reading it again is not found.
type absentRow struct{}

const insertRefresh = "INSERT INTO oauth2_refresh (signature, request_id, client_id, subject, requested_at, expires_at, request, active, access_signature) VALUES (?, ?, ?, ?, ?, ?, ?, TRUE, ?)"

// expiry is the expires_at of rec in a table of token type tt; see the
// package documentation.
func (s *Store) expiry(rec storage.RequestRecord, tt fosite.TokenType) time.Time {
	if e := rec.ExpiresAt(tt); !e.IsZero() {
		return e
	}
	if tt == fosite.RefreshToken {
		return neverExpires
	}
	base := rec.RequestedAt
	if base.IsZero() {
		base = s.now()
	}
	return base.Add(defaultLifetime)
}

func (s *Store) create(ctx context.Context, a *artifact, key string, r fosite.Requester, accessSignature string) error {
	if a == pkceRequests || a == oidcSessions {
		if folded, err := s.foldSession(ctx, a, key, r); folded || err != nil {
			return err
		}
	}
	rec, data, err := s.encode(ctx, r)
	if err != nil {
		return fmt.Errorf("%s: encode %s: %w", s.d.Name, a.table, err)
	}
	args := []any{hash(key), rec.ID, rec.ClientID, rec.Subject, micros(rec.RequestedAt), micros(s.expiry(rec, a.tt)), data}
	query := a.insert
	if a == refreshTokens {
		query = insertRefresh
		args = append(args, hash(accessSignature))
	}
	if err := s.write(ctx, "create "+a.table, nil, query, args...); err != nil {
		return err
	}
	if st := s.state(ctx); a == codes && st != nil && st.tx == nil {
		st.code = &queuedCode{i: len(st.pending) - 1, rec: rec}
		st.code.rec.Form = ""
	}
	return nil
}

// queuedCode is the insert of an authorization code queued in a write set,
// into which foldSession puts the code's sessions.
type queuedCode struct {
	i       int                   // index in pending
	rec     storage.RequestRecord // the code's record, without its form
	pkce    sql.NullString        // the PKCE session's form
	oidc    sql.NullString        // the OpenID Connect session's form
	oidcKey sql.NullString        // hash of the raw code
}

// foldSession keeps the PKCE (a: pkceRequests) or OpenID Connect session
// (oidcSessions) r of key in the row of its authorization code when the
// code's insert is queued in the same write set (fosite's authorization
// response creates the three in turn, see provider's newAuthorizeResponse)
// and r is the code's request but for its form (fosite stores the
// request sanitised to each handler's form values): one insert instead of
// three, and at the exchange no deletes of their own, the code's
// invalidation clearing both (see DeletePKCERequestSession). It reports
// whether it did; otherwise the session gets a row of its own.
func (s *Store) foldSession(ctx context.Context, a *artifact, key string, r fosite.Requester) (bool, error) {
	st := s.state(ctx)
	if st == nil || st.tx != nil || st.done || st.code == nil {
		return false, nil
	}
	c := st.code
	p := &st.pending[c.i]
	if p.Query != codes.insert && p.Query != insertCodeFolded {
		return false, nil
	}
	if a == pkceRequests && (c.pkce.Valid || p.Args[0] != hash(key)) || a == oidcSessions && c.oidcKey.Valid {
		return false, nil
	}
	rec, err := storage.EncodeRequest(r)
	if err != nil {
		return false, fmt.Errorf("%s: encode %s: %w", s.d.Name, a.table, err)
	}
	form := rec.Form
	rec.Form = ""
	if !rec.Equal(c.rec) {
		return false, nil
	}
	if a == pkceRequests {
		c.pkce = sql.NullString{String: form, Valid: true}
	} else {
		c.oidc = sql.NullString{String: form, Valid: true}
		c.oidcKey = sql.NullString{String: hash(key), Valid: true}
	}
	args := append(p.Args[:7:7], c.pkce, c.oidcKey, c.oidc)
	p.Query, p.Args = insertCodeFolded, args
	return true, nil
}

// encode returns r's record and its JSON. In a transaction, the same
// *fosite.Request created twice in a row (a grant's access and refresh
// token rows, see provider's tokenIssuer) is encoded once: whoever
// changes a request between two creates of one transaction passes a new
// one (fosite's handlers pass a fresh Sanitize copy to each).
func (s *Store) encode(ctx context.Context, r fosite.Requester) (storage.RequestRecord, string, error) {
	st := s.state(ctx)
	p, _ := r.(*fosite.Request)
	if st != nil && p != nil && st.encoded.req == p {
		return st.encoded.rec, st.encoded.data, nil
	}
	rec, err := storage.EncodeRequest(r)
	if err != nil {
		return rec, "", err
	}
	b, err := rec.Marshal()
	if err != nil {
		return rec, "", err
	}
	data := string(b)
	if st != nil && p != nil {
		st.encoded.req, st.encoded.rec, st.encoded.data = p, rec, data
	}
	return rec, data, nil
}

// load reads the stored record of key, with its client. The returned
// ClientManager answers for that client without a query and asks the store
// for any other.
//
// With a non-nil session the record's session is decoded into it as the
// record is (storage.UnmarshalRecord), and rec comes back without Session.
func (s *Store) load(ctx context.Context, a *artifact, key string, session fosite.Session) (rec storage.RequestRecord, cm fosite.ClientManager, active bool, expiresAt time.Time, err error) {
	var (
		data                      []byte
		exp                       int64
		cid                       sql.NullString
		cr                        clientRow
		version, created, updated sql.NullInt64
	)
	dest := []any{&active, &exp, &data, &cid, &cr.secretHash, &cr.meta, &version, &created, &updated}
	query := a.get
	pre := storage.PrefetchFrom(ctx)
	var u nullUserRow
	if a == refreshTokens && pre != nil {
		query = getRefreshWithUser
		dest = append(dest, u.dest()...)
	}
	// An authorization code is read twice by its exchange (see
	// storage.Prefetch): the second read reuses the row of the first,
	// which, given the raw code, brought its PKCE and OpenID Connect
	// sessions along.
	rowKey := prefetchKey(a, key)
	var code string
	if a == codes && pre != nil {
		code = pre.AuthorizeCode()
	}
	args := []any{hash(key)}
	var sessions sessionRows
	var form sql.NullString // replaces the request's form: a session kept in its code's row
	switch {
	case code != "":
		query = getCodeWithSessions
		args = []any{hash(code), hash(key)}
		dest = append(dest, sessions.dest()...)
	case a == pkceRequests:
		query, args = getFoldedPKCE, []any{hash(key), hash(key)}
		dest = append(dest, &form)
	case a == oidcSessions:
		query, args = getFoldedOIDC, []any{hash(key), hash(key)}
		dest = append(dest, &form)
	}
	var client *storage.Client // the row's client, decoded; nil without one
	if v, ok := pre.Row(rowKey); ok && rowKey != "" {
		r, ok := v.(artifactRow)
		if !ok {
			return rec, nil, false, time.Time{}, s.wrap("get "+a.table, sql.ErrNoRows)
		}
		active, exp, data, cid, client, form = r.active, r.exp, r.data, r.cid, r.client, r.form
	} else {
		err = s.queryRow(ctx, query, args, dest...)
		if err != nil {
			return rec, nil, false, time.Time{}, s.wrap("get "+a.table, err)
		}
		if cid.Valid {
			cr.id, cr.version, cr.created, cr.updated = cid.String, version.Int64, created.Int64, updated.Int64
			cl, err := s.decoded.client(&cr)
			if err != nil {
				return rec, nil, false, time.Time{}, fmt.Errorf("%s: get %s: %w", s.d.Name, a.table, err)
			}
			client = &cl
		}
		if rowKey != "" {
			pre.PutRow(rowKey, artifactRow{active: active, exp: exp, data: data, cid: cid, client: client})
		}
		if code != "" {
			// The sessions are of the code's request, hence of its
			// client, decoded once for the three.
			codeRow := artifactRow{active: active, exp: exp, data: data, cid: cid, client: client}
			sessions.put(pre, prefetchKey(pkceRequests, key), 0, artifactRow{cid: cid, client: client}, codeRow, sessions.pkceForm)
			oidcForm := sessions.oidcForm
			if sessions.oidcKey.String != hash(code) {
				oidcForm = sql.NullString{} // not this code's (cannot be: the code is its key's)
			}
			sessions.put(pre, prefetchKey(oidcSessions, code), 1, artifactRow{cid: cid, client: client}, codeRow, oidcForm)
		}
	}
	if u.subject.Valid {
		pre.PutUser(u.user())
	}
	if rec, err = storage.UnmarshalRecord(data, session); err != nil {
		return rec, nil, false, time.Time{}, fmt.Errorf("%s: decode %s: %w", s.d.Name, a.table, err)
	}
	if form.Valid {
		rec.Form = form.String
	}
	cm = s
	if cid.Valid && client != nil {
		cl := *client // each request its own (shallow) copy
		cm = preloaded{ClientManager: s, client: &cl}
	}
	return rec, cm, active, fromMicros(exp), nil
}

// artifactRow is a row load read, kept for a second read (PutRow).
type artifactRow struct {
	active bool
	exp    int64
	data   []byte
	cid    sql.NullString
	client *storage.Client // cid's client, decoded; not changed once kept
	// deleted says that the row's DELETE is in a write set already (see
	// deleteKeptOIDC).
	deleted bool
	// form, if valid, is the form of a session kept in its code's row
	// (see foldSession): the row is the code's, its request is the code's
	// with this form.
	form sql.NullString
}

// preloaded is a fosite.ClientManager that knows one client already.
type preloaded struct {
	fosite.ClientManager
	client *storage.Client // never nil
}

// GetClient implements fosite.ClientManager.
func (p preloaded) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	if id == p.client.ID {
		return p.client, nil
	}
	return p.ClientManager.GetClient(ctx, id)
}

func (s *Store) get(ctx context.Context, a *artifact, key string, session fosite.Session) (*fosite.Request, bool, error) {
	rec, cm, active, _, err := s.load(ctx, a, key, session)
	if err != nil {
		return nil, false, err
	}
	req, err := rec.Decode(ctx, cm, session)
	if err != nil {
		return nil, false, fmt.Errorf("%s: get %s: %w", s.d.Name, a.table, err)
	}
	return req, active, nil
}

func (s *Store) del(ctx context.Context, a *artifact, key string) error {
	return s.write(ctx, "delete "+a.table, nil, a.del, hash(key))
}

// prefetchKey is the storage.Prefetch row key of the row of a under key,
// or "" for tables whose rows are not kept.
func prefetchKey(a *artifact, key string) string {
	if a != codes && a != pkceRequests && a != oidcSessions {
		return ""
	}
	return a.table + "\x00" + key
}

// sessionRows are the PKCE and OpenID Connect session columns of
// getCodeWithSessions (NULL when the code has none): rows of their own
// tables, and the columns of sessions kept in the code's row.
type sessionRows struct {
	own [2]struct {
		active sql.NullBool
		exp    sql.NullInt64
		data   []byte
	}
	pkceForm, oidcKey, oidcForm sql.NullString
}

func (r *sessionRows) dest() []any {
	return []any{&r.own[0].active, &r.own[0].exp, &r.own[0].data, &r.own[1].active, &r.own[1].exp, &r.own[1].data,
		&r.pkceForm, &r.oidcKey, &r.oidcForm}
}

// put keeps session i under key: the code's row codeRow with form when
// the code's row keeps it (form valid), else its own row with the client
// columns of row, or absentRow when there is none.
func (r *sessionRows) put(pre *storage.Prefetch, key string, i int, row, codeRow artifactRow, form sql.NullString) {
	if form.Valid {
		codeRow.form = form
		pre.PutRow(key, codeRow)
		return
	}
	if !r.own[i].active.Valid {
		pre.PutRow(key, absentRow{})
		return
	}
	row.active, row.exp, row.data = r.own[i].active.Bool, r.own[i].exp.Int64, r.own[i].data
	pre.PutRow(key, row)
}

// CreateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage.
func (s *Store) CreateAuthorizeCodeSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.create(ctx, codes, signature, r, "")
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

// InvalidateAuthorizeCodeSession implements oauth2.AuthorizeCodeStorage with
// a conditional update: unless the code was active it fails with
// fosite.ErrInvalidatedAuthorizeCode (at Commit, in a transaction), so only
// one exchange can succeed.
func (s *Store) InvalidateAuthorizeCodeSession(ctx context.Context, signature string) error {
	query := invalidateCode
	if s.d.InvalidateCode != "" {
		query = s.d.InvalidateCode
	}
	// The sessions kept in the code's row that the exchange deletes: the
	// invalidation deletes them too.
	pre := storage.PrefetchFrom(ctx)
	pkceKey := prefetchKey(pkceRequests, signature)
	pkce := pre.Deferred(pkceKey) // see DeletePKCERequestSession
	oidc := s.keptOIDC(ctx, signature)
	if pkce || oidc != nil {
		query = invalidateCodeSessions
		if s.d.InvalidateCodeSessions != "" {
			query = s.d.InvalidateCodeSessions
		}
	}
	if err := s.write(ctx, "invalidate oauth2_code", fosite.ErrInvalidatedAuthorizeCode, query, hash(signature)); err != nil {
		return err
	}
	if pkce {
		// The deferred delete is done once this commits (until then,
		// Flush would still make it).
		if st := s.state(ctx); st != nil {
			st.committed = append(st.committed, func() { pre.Done(pkceKey) })
		} else {
			pre.Done(pkceKey)
		}
	}
	if oidc != nil {
		r := *oidc
		r.deleted = true
		pre.PutRow(prefetchKey(oidcSessions, pre.AuthorizeCode()), r)
		return nil
	}
	return s.deleteKeptOIDC(ctx, signature)
}

// keptOIDC returns the OpenID Connect session that the read of the code of
// signature kept (storage.Prefetch) when the code's row keeps it (see
// foldSession) and ctx holds a transaction; else nil.
func (s *Store) keptOIDC(ctx context.Context, signature string) *artifactRow {
	pre := storage.PrefetchFrom(ctx)
	code := pre.AuthorizeCode()
	if code == "" || s.state(ctx) == nil {
		return nil
	}
	if _, ok := pre.Row(prefetchKey(codes, signature)); !ok {
		return nil
	}
	v, _ := pre.Row(prefetchKey(oidcSessions, code))
	if r, ok := v.(artifactRow); ok && r.form.Valid && !r.deleted {
		return &r
	}
	return nil
}

// deleteKeptOIDC deletes, in the write set of ctx that invalidates the
// code of signature, the code's OpenID Connect session when the code's
// read kept it (storage.Prefetch): fosite deletes it only after the
// tokens committed, in a round trip of its own, which
// DeleteOpenIDConnectSession then skips. Until then the kept row still
// answers fosite's read of it, as the code's does.
func (s *Store) deleteKeptOIDC(ctx context.Context, signature string) error {
	pre := storage.PrefetchFrom(ctx)
	code := pre.AuthorizeCode()
	if code == "" || s.state(ctx) == nil {
		return nil
	}
	if _, ok := pre.Row(prefetchKey(codes, signature)); !ok {
		return nil // read without its sessions
	}
	key := prefetchKey(oidcSessions, code)
	v, ok := pre.Row(key)
	r, isRow := v.(artifactRow)
	if !ok || !isRow || r.form.Valid {
		return nil // none, or in the code's row (see keptOIDC)
	}
	if err := s.write(ctx, "delete "+oidcSessions.table, nil, oidcSessions.del, hash(code)); err != nil {
		return err
	}
	r.deleted = true
	pre.PutRow(key, r)
	return nil
}

// CreateAccessTokenSession implements oauth2.AccessTokenStorage.
func (s *Store) CreateAccessTokenSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.create(ctx, accessTokens, signature, r, "")
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
func (s *Store) DeleteAccessTokenSession(ctx context.Context, signature string) error {
	return s.del(ctx, accessTokens, signature)
}

// CreateRefreshTokenSession implements oauth2.RefreshTokenStorage.
func (s *Store) CreateRefreshTokenSession(ctx context.Context, signature, accessSignature string, r fosite.Requester) error {
	return s.create(ctx, refreshTokens, signature, r, accessSignature)
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
func (s *Store) DeleteRefreshTokenSession(ctx context.Context, signature string) error {
	return s.del(ctx, refreshTokens, signature)
}

// RotateRefreshToken implements oauth2.RefreshTokenStorage: it deactivates
// the refresh token only if it is still active (otherwise
// storage.ErrNotFound, which fosite answers with "please retry"; at Commit,
// in a transaction), then deletes the access tokens of requestID. Rows are
// touched in that order (refresh row by key first), in the context's
// transaction or a new one.
func (s *Store) RotateRefreshToken(ctx context.Context, requestID, signature string) error {
	const op = "rotate oauth2_refresh"
	used := s.refreshUsed
	if s.d.RotateRefresh != "" {
		return s.write(ctx, op, used, s.d.RotateRefresh, hash(signature), requestID)
	}
	rotate := func(ctx context.Context) error {
		if err := s.write(ctx, op, used, rotateRefresh, hash(signature)); err != nil {
			return err
		}
		return s.write(ctx, op+": delete oauth2_access", nil, deleteAccessByRequest, requestID)
	}
	if s.state(ctx) != nil {
		return rotate(ctx)
	}
	return s.inTx(ctx, op, false, rotate)
}

// RevokeRefreshToken implements oauth2.TokenRevocationStorage: every active
// refresh token of requestID becomes inactive.
func (s *Store) RevokeRefreshToken(ctx context.Context, requestID string) error {
	return s.write(ctx, "revoke oauth2_refresh", nil, revokeRefresh, requestID)
}

// RevokeAccessToken implements oauth2.TokenRevocationStorage: every access
// token of requestID is deleted.
func (s *Store) RevokeAccessToken(ctx context.Context, requestID string) error {
	return s.write(ctx, "revoke oauth2_access", nil, deleteAccessByRequest, requestID)
}

// CreatePKCERequestSession implements pkce.PKCERequestStorage.
func (s *Store) CreatePKCERequestSession(ctx context.Context, signature string, r fosite.Requester) error {
	return s.create(ctx, pkceRequests, signature, r, "")
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
// Outside a transaction it commits asynchronously where the dialect can
// (see asyncQueries): the code it belongs to is spent.
func (s *Store) DeletePKCERequestSession(ctx context.Context, signature string) error {
	pre := storage.PrefetchFrom(ctx)
	key := prefetchKey(pkceRequests, signature)
	v, kept := pre.Row(key)
	pre.PutRow(key, absentRow{})
	const op = "delete oauth2_pkce"
	r, isRow := v.(artifactRow)
	folded := isRow && r.form.Valid
	sig := hash(signature)
	deleteFolded := func(ctx context.Context) error {
		return s.write(ctx, op, nil, s.async(ctx, deleteFoldedPKCE, s.asyncQ.deleteFoldedPKCE), sig)
	}
	switch {
	case folded && s.state(ctx) == nil:
		// Kept in the code's row and read by the code's exchange
		// (storage.Prefetch), which deletes it before checking the
		// verifier: when the exchange succeeds, the code's
		// invalidation deletes it in the same statement (a second
		// update of the row would no longer fit its page: not HOT);
		// else the caller's Flush does, before the answer.
		pre.Defer(key, deleteFolded)
		return nil
	case folded:
		return deleteFolded(ctx)
	case !kept:
		// Unread: in the code's row or a row of its own.
		if err := deleteFolded(ctx); err != nil {
			return err
		}
	}
	return s.write(ctx, op, nil, s.async(ctx, pkceRequests.del, s.asyncQ.deletePKCE), sig)
}

// CreateOpenIDConnectSession implements
// openid.OpenIDConnectRequestStorage; the row is keyed by the SHA-256 of the
// raw authorization code.
func (s *Store) CreateOpenIDConnectSession(ctx context.Context, code string, r fosite.Requester) error {
	return s.create(ctx, oidcSessions, code, r, "")
}

// GetOpenIDConnectSession implements openid.OpenIDConnectRequestStorage;
// the session is unmarshalled into requester's session.
func (s *Store) GetOpenIDConnectSession(ctx context.Context, code string, requester fosite.Requester) (fosite.Requester, error) {
	var session fosite.Session
	if requester != nil {
		session = requester.GetSession()
	}
	req, _, err := s.get(ctx, oidcSessions, code, session)
	if err != nil {
		return nil, err
	}
	return req, nil
}

// DeleteOpenIDConnectSession implements openid.OpenIDConnectRequestStorage.
// Outside a transaction it commits asynchronously where the dialect can
// (see asyncQueries): the code it belongs to is spent.
func (s *Store) DeleteOpenIDConnectSession(ctx context.Context, code string) error {
	pre := storage.PrefetchFrom(ctx)
	key := prefetchKey(oidcSessions, code)
	v, _ := pre.Row(key)
	pre.PutRow(key, absentRow{})
	r, isRow := v.(artifactRow)
	if isRow && r.deleted {
		return nil // deleted with the code's invalidation (deleteKeptOIDC)
	}
	const op = "delete " + "oauth2_oidc"
	if v == nil || isRow && r.form.Valid {
		// In the code's row (or, unread, perhaps there).
		if err := s.write(ctx, op, nil, s.async(ctx, deleteFoldedOIDC, s.asyncQ.deleteFoldedOIDC), hash(code)); err != nil || v != nil {
			return err
		}
	}
	return s.write(ctx, op, nil, s.async(ctx, oidcSessions.del, s.asyncQ.deleteOIDC), hash(code))
}

// CreatePARSession implements fosite.PARStorage.
func (s *Store) CreatePARSession(ctx context.Context, requestURI string, r fosite.AuthorizeRequester) error {
	return s.create(ctx, parRequests, requestURI, r, "")
}

// GetPARSession implements fosite.PARStorage. A request past its
// fosite.PushedAuthorizeRequestContext expiry is not found. The session is
// decoded into an *openid.DefaultSession (fosite replaces it when the
// authorization completes).
func (s *Store) GetPARSession(ctx context.Context, requestURI string) (fosite.AuthorizeRequester, error) {
	rec, cm, _, exp, err := s.load(ctx, parRequests, requestURI, nil)
	if err != nil {
		return nil, err
	}
	if !exp.After(s.now()) {
		return nil, fmt.Errorf("%s: get oauth2_par: expired: %w", s.d.Name, storage.ErrNotFound)
	}
	ar, err := rec.DecodeAuthorize(ctx, cm, new(openid.DefaultSession))
	if err != nil {
		return nil, fmt.Errorf("%s: get oauth2_par: %w", s.d.Name, err)
	}
	return ar, nil
}

// DeletePARSession implements fosite.PARStorage.
func (s *Store) DeletePARSession(ctx context.Context, requestURI string) error {
	return s.del(ctx, parRequests, requestURI)
}

// ClientAssertionJWTValid implements fosite.ClientManager: it returns
// fosite.ErrJTIKnown if jti is recorded and has not expired.
func (s *Store) ClientAssertionJWTValid(ctx context.Context, jti string) error {
	var exp int64
	err := s.queryRow(ctx, "SELECT expires_at FROM oauth2_jti WHERE jti = ?", []any{hash(jti)}, &exp)
	if err != nil {
		if err = s.wrap("get oauth2_jti", err); isNotFound(err) {
			return nil
		}
		return err
	}
	if exp > micros(s.now()) {
		return fosite.ErrJTIKnown
	}
	return nil
}

// SetClientAssertionJWT implements fosite.ClientManager with one atomic
// upsert: it records jti until exp, or returns fosite.ErrJTIKnown if it is
// recorded and unexpired.
func (s *Store) SetClientAssertionJWT(ctx context.Context, jti string, exp time.Time) error {
	n, err := s.execN(ctx, `INSERT INTO oauth2_jti (jti, expires_at) VALUES (?, ?)
ON CONFLICT (jti) DO UPDATE SET expires_at = excluded.expires_at WHERE oauth2_jti.expires_at <= ?`,
		hash(jti), micros(exp), micros(s.now()))
	if err != nil {
		return s.wrap("set oauth2_jti", err)
	}
	if n == 0 {
		return fosite.ErrJTIKnown
	}
	return nil
}

// DeleteExpired implements storage.Storage with batched deletes, one
// autocommitted statement at a time through the expires_at index, paced
// (see pace, deleteExpired; at most deleteBatch rows, fewer under
// Dialect.JanitorStatement); then, where the dialect compacts, it gives
// the freed pages back in paced steps.
func (s *Store) DeleteExpired(ctx context.Context, before time.Time) (int64, error) {
	type target struct{ table, key string }
	targets := make([]target, 0, len(artifacts)+2)
	for _, a := range artifacts {
		targets = append(targets, target{a.table, "signature"})
	}
	targets = append(targets, target{"oauth2_jti", "jti"}, target{"leases", "name"}, target{"rate_limits", "name"}, target{"refresh_successors", "signature"},
		target{"session_clients", "id"}, target{"logout_jobs", "id"}, target{"initial_access_tokens", "id"})
	for _, t := range webLoginTables {
		targets = append(targets, target{t[0], t[1]})
	}
	var total int64
	b := micros(before)
	targets = append(targets, target{"device_auths", "device_hash"})
	batch := s.newJanitorBatch(minJanitorBatch, deleteBatch)
	for _, t := range targets {
		cutoff := b
		if t.table == "device_auths" {
			cutoff = micros(before.Add(-storage.DeviceRetention)) // late polls learn of the expiry
		}
		n, err := s.deleteExpired(ctx, t.table, t.key, cutoff, batch)
		total += n
		if err != nil {
			return total, err
		}
	}
	// Push events are few (minutes of pushes) and keyed by two columns.
	n, err := s.execN(ctx, "DELETE FROM push_events WHERE expires_at < ?", b)
	if err != nil {
		return total, s.wrap("delete expired push_events", err)
	}
	total += n
	if total > 0 && s.d.Compact != "" {
		if err := s.compact(ctx); err != nil {
			return total, err
		}
	}
	return total, nil
}

// compact gives free pages back with the dialect's Compact statement, at
// most compactPages at a time (fewer under Dialect.JanitorStatement),
// paced, until CompactLeft says none are left or a step gave none back (a
// database not in incremental auto-vacuum mode, such as SQLite's
// in-memory one, keeps its free pages).
func (s *Store) compact(ctx context.Context) error {
	batch := s.newJanitorBatch(minJanitorBatch, compactPages)
	last := int64(-1)
	for {
		start := time.Now()
		if _, err := s.exec(ctx, fmt.Sprintf(s.d.Compact, batch.size)); err != nil {
			return s.wrap("compact", err)
		}
		took := time.Since(start)
		batch.adapt(took)
		if s.d.CompactLeft == "" {
			return nil
		}
		var left int64
		if err := s.queryRow(ctx, s.d.CompactLeft, nil, &left); err != nil {
			return s.wrap("compact", err)
		}
		if left == 0 || left == last {
			return nil
		}
		last = left
		if err := s.janitorPause(ctx, took); err != nil {
			return s.wrap("compact", err)
		}
	}
}

// compactPages is how many pages one Compact statement frees (4 MB of
// SQLite's 4 KB pages): giving back the gigabytes of a big janitor round
// in one statement would hold the writer for as long.
const compactPages = 1024

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
