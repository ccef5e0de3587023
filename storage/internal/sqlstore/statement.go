package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// run executes one write in tx.
func (s *Store) run(ctx context.Context, tx *sql.Tx, p Stmt) error {
	st, err := s.statement(ctx, tx, s.w, p.Query)
	if err != nil {
		return s.wrap(p.op, err)
	}
	defer st.close()
	done := s.tripQuery(ctx, p.Query)
	res, err := st.exec(s.stmtContext(ctx, tx), p.Args...)
	done(err)
	return s.result(p, res, err)
}

// stmtContext is the context a statement runs with: ctx, or in a
// transaction on a DetachTxStatements dialect, ctx without its
// cancellation.
func (s *Store) stmtContext(ctx context.Context, tx *sql.Tx) context.Context {
	if tx != nil && s.d.DetachTxStatements {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// stmt is a statement ready to run: prepared (on a pool, or bound to a
// transaction), or else the query text to run in a transaction.
type stmt struct {
	prep  *sql.Stmt // nil: run query in tx
	bound bool      // prep is bound to a transaction; close closes it
	tx    *sql.Tx
	query string // with the dialect's placeholders
}

// statement returns query ready to run in tx or, when tx is nil, prepared
// on db (once). In a transaction the writer's prepared statement is used
// when there is one; nothing new is prepared there (see cached).
func (s *Store) statement(ctx context.Context, tx *sql.Tx, db *sql.DB, query string) (stmt, error) {
	if tx == nil {
		prep, err := s.prepared(ctx, db, query)
		return stmt{prep: prep}, s.classify(err)
	}
	if prep := s.cached(query); prep != nil {
		return stmt{prep: tx.StmtContext(ctx, prep), bound: true}, nil
	}
	return stmt{tx: tx, query: s.q(query)}, nil
}

func (st stmt) close() {
	if st.bound {
		st.prep.Close()
	}
}

func (st stmt) exec(ctx context.Context, args ...any) (sql.Result, error) {
	if st.prep != nil {
		return st.prep.ExecContext(ctx, args...)
	}
	return st.tx.ExecContext(ctx, st.query, args...)
}

func (st stmt) queryRow(ctx context.Context, args ...any) *sql.Row {
	if st.prep != nil {
		return st.prep.QueryRowContext(ctx, args...)
	}
	return st.tx.QueryRowContext(ctx, st.query, args...)
}

func (st stmt) queryRows(ctx context.Context, args ...any) (*sql.Rows, error) {
	if st.prep != nil {
		return st.prep.QueryContext(ctx, args...)
	}
	return st.tx.QueryContext(ctx, st.query, args...)
}

// result is the error of write p that returned res and err: p.guard for a
// conditional write that found no active row, else err wrapped.
func (s *Store) result(p Stmt, res sql.Result, err error) error {
	if err != nil {
		if p.guard != nil && s.d.IsGuardFailure != nil && s.d.IsGuardFailure(err) {
			return p.guard
		}
		return s.wrap(p.op, err)
	}
	if p.guard != nil {
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return p.guard
		}
	}
	return nil
}

// q returns query with the dialect's placeholders. Queries are written with
// ? and contain no literal question marks.
func (s *Store) q(query string) string {
	if !s.d.NumberedPlaceholders {
		return query
	}
	if v, ok := s.rebound.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	v, _ := s.rebound.LoadOrStore(query, b.String())
	return v.(string)
}

// prepared returns query prepared on db, preparing it once.
func (s *Store) prepared(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	k := stmtKey{db, query}
	if v, ok := s.stmts.Load(k); ok {
		return v.(*sql.Stmt), nil
	}
	done := s.trip(ctx, "prepare")
	st, err := db.PrepareContext(ctx, s.q(query))
	done(err)
	if err != nil {
		return nil, err
	}
	if v, loaded := s.stmts.LoadOrStore(k, st); loaded {
		st.Close()
		return v.(*sql.Stmt), nil
	}
	return st, nil
}

// cached returns query's statement prepared on the writer, if it has been.
// Inside a transaction nothing may be prepared on the writer: with SQLite
// its only connection is the transaction's.
func (s *Store) cached(query string) *sql.Stmt {
	if v, ok := s.stmts.Load(stmtKey{s.w, query}); ok {
		return v.(*sql.Stmt)
	}
	return nil
}

// txQueries are the statements fosite runs in transactions (code exchange,
// refresh rotation, reuse detection), what they read, the session key
// the Mini Program grant stores with its tokens, the login-state steps
// that run in one transaction without WritableCTE (AdmitLoginState,
// AdvanceLoginState), and the writes of a web login's write sets (the
// browser session, the authorization code and its PKCE and OpenID Connect
// sessions, the latter's delete at the exchange); warm prepares them on the
// writer before the first transaction. A statement run in a transaction
// that is not prepared there is parsed on every run (SQLite).
var txQueries = []string{
	insertRefresh, accessTokens.insert, codes.get, refreshTokens.get, accessTokens.get,
	accessTokens.del, refreshTokens.del, rotateRefresh, deleteAccessByRequest,
	revokeRefresh, invalidateCode, selectClient, putSessionKey,
	recordLogin, recordIdentityLogin, insertEvent,
	takeRate, createLoginState, consumeLoginState,
	insertBrowserSession, codes.insert, pkceRequests.insert, oidcSessions.insert, oidcSessions.del,
	insertCodeFolded, invalidateCodeSessions,
}

// warm prepares txQueries on the writer once; it must run outside any
// transaction. A failure (say, before Migrate) is retried next time.
func (s *Store) warm(ctx context.Context) {
	if s.warmed.Load() {
		return
	}
	qs := txQueries
	for _, q := range []string{s.d.RotateRefresh, s.d.InvalidateCode, s.d.InvalidateCodeSessions, s.d.RecordLogin, s.d.RecordIdentityLogin} {
		if q != "" {
			qs = append(qs[:len(qs):len(qs)], q)
		}
	}
	for _, q := range qs {
		if _, err := s.prepared(ctx, s.w, q); err != nil {
			return
		}
	}
	s.warmed.Store(true)
}

// write runs a write whose result nobody needs: queued when the context
// holds a write set, else run in the context's transaction or on the
// writer. guard, if set, makes it a conditional write (see Stmt). Errors
// are wrapped with op.
func (s *Store) write(ctx context.Context, op string, guard error, query string, args ...any) error {
	p := Stmt{Query: query, Args: args, op: op, guard: guard}
	if st := s.state(ctx); st != nil {
		if st.tx == nil {
			if st.done {
				return fmt.Errorf("%s: %s: the transaction has already ended", s.d.Name, op)
			}
			st.pending = append(st.pending, p)
			return nil
		}
		return s.run(ctx, st.tx, p)
	}
	res, err := s.exec(ctx, query, args...)
	return s.result(p, res, err)
}

// exec runs a statement in the context's transaction or on the writer.
func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	tx, err := s.txFrom(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.statement(ctx, tx, s.w, query)
	if err != nil {
		return nil, err
	}
	defer st.close()
	done := s.tripQuery(ctx, query)
	res, err := st.exec(s.stmtContext(ctx, tx), args...)
	done(err)
	return res, s.classify(err)
}

// execN runs a statement and returns how many rows it changed.
func (s *Store) execN(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryRow runs a one-row query in the context's transaction or on the
// reader and scans the row into dest; no row is sql.ErrNoRows.
func (s *Store) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	tx, err := s.readTx(ctx)
	if err != nil {
		return err
	}
	return s.scanOne(ctx, tx, s.r, query, args, dest)
}

// writeReturning runs a write with RETURNING in the context's transaction
// (beginning it if the context holds a write set) or on the writer, and
// scans its one row into dest; no row is sql.ErrNoRows.
func (s *Store) writeReturning(ctx context.Context, query string, args []any, dest ...any) error {
	tx, err := s.txFrom(ctx)
	if err != nil {
		return err
	}
	return s.scanOne(ctx, tx, s.w, query, args, dest)
}

// scanOne runs a one-row statement in tx, or on db without one, and scans
// the row into dest; no row is sql.ErrNoRows.
func (s *Store) scanOne(ctx context.Context, tx *sql.Tx, db *sql.DB, query string, args []any, dest []any) error {
	st, err := s.statement(ctx, tx, db, query)
	if err != nil {
		return err
	}
	defer st.close()
	done := s.tripQuery(ctx, query)
	err = st.queryRow(s.stmtContext(ctx, tx), args...).Scan(dest...)
	done(err)
	return s.classify(err)
}

// query runs a query in the context's transaction or on the reader and
// calls scan for each row.
func (s *Store) query(ctx context.Context, query string, args []any, scan func(*sql.Rows) error) error {
	tx, err := s.readTx(ctx)
	if err != nil {
		return err
	}
	st, err := s.statement(ctx, tx, s.r, query)
	if err != nil {
		return err
	}
	defer st.close()
	done := s.tripQuery(ctx, query)
	rows, err := st.queryRows(s.stmtContext(ctx, tx), args...)
	if err != nil {
		done(err)
		return s.classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			done(nil) // the database answered; the caller's scan failed
			return err
		}
	}
	err = rows.Err()
	done(err)
	return s.classify(err)
}
