package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// txKey is the context key of the transaction begun by BeginTX.
type txKey struct{}

// txState is a transaction in a context. One begun by BeginTX starts as a
// write set: the writes fosite's token steps make (token rows, rotations,
// invalidations, the session key) are only queued, with their arguments
// already encoded, and Commit sends them to the database at once: in one
// round trip and implicit transaction where the dialect has ExecBatch, else
// in one short transaction on the writer (so SQLite's single writer is held
// for the statements alone, never while a request encodes or signs). The
// first statement that needs a result (a read after a queued write, a
// row-counted write, a read-modify-write helper) turns the write set into a
// database transaction, running the queued writes in it first; reads before
// any write go to the reader, outside a transaction. Either way the effects
// are those of one transaction, and a conditional write that finds its row
// already used fails the whole set: at Commit, when it was queued.
type txState struct {
	s       *Store
	tx      *sql.Tx // the database transaction; nil while only queueing
	pending []Stmt  // queued writes, in order
	// code is the authorization code insert queued last, if any (see
	// foldSession).
	code *queuedCode
	// committed run when the transaction has committed.
	committed []func()
	done      bool // committed or rolled back (or failed trying)
	// encoded is the request the last create encoded, with its record
	// and JSON (see Store.encode).
	encoded struct {
		req  *fosite.Request
		rec  storage.RequestRecord
		data string
	}
	// clients are the IDs of the clients the transaction changed: the
	// client cache drops them again when it ends, so that a read racing
	// the commit does not keep the old client.
	clients []string
}

// end drops the clients the transaction changed from the cache.
func (st *txState) end() {
	for _, id := range st.clients {
		st.s.clients.drop(id)
	}
	st.clients = nil
}

// clientChanged drops client id from the cache, now and, in a
// transaction, again when it ends.
func (s *Store) clientChanged(ctx context.Context, id string) {
	s.clients.drop(id)
	if st := s.state(ctx); st != nil {
		st.clients = append(st.clients, id)
	}
}

// Stmt is one queued write: a statement and its arguments. Queued, Query
// has ? placeholders; ExecBatch receives it with the dialect's.
type Stmt struct {
	Query string
	Args  []any
	op    string // error context
	// guard, if set, is the error of a conditional write that found no
	// active row: it changed no row, or failed with the dialect's guard
	// error.
	guard error
}

func (s *Store) state(ctx context.Context) *txState {
	if st, ok := ctx.Value(txKey{}).(*txState); ok && st.s == s {
		return st
	}
	return nil
}

// txFrom returns the context's database transaction, beginning it (and
// running the queued writes in it) if the context holds a write set.
func (s *Store) txFrom(ctx context.Context) (*sql.Tx, error) {
	st := s.state(ctx)
	if st == nil {
		return nil, nil
	}
	if err := st.begin(ctx); err != nil {
		return nil, err
	}
	return st.tx, nil
}

// begin turns a write set into a database transaction.
func (st *txState) begin(ctx context.Context) error {
	if st.tx != nil {
		return nil
	}
	if st.done {
		return fmt.Errorf("%s: the transaction has already ended", st.s.d.Name)
	}
	s := st.s
	s.warm(ctx)
	done := s.trip(ctx, "begin")
	tx, err := s.w.BeginTx(ctx, nil)
	done(err)
	if err != nil {
		return s.wrap("begin", err)
	}
	st.tx = tx
	pending := st.pending
	st.pending = nil
	for _, p := range pending {
		if err := s.run(ctx, tx, p); err != nil {
			return err
		}
	}
	return nil
}

// flush writes a write set that never became a database transaction.
func (st *txState) flush(ctx context.Context) error {
	s := st.s
	if len(st.pending) == 0 {
		return nil
	}
	if s.d.ExecBatch == nil {
		if err := st.begin(ctx); err != nil {
			if st.tx != nil {
				st.tx.Rollback() // the failure that stopped it is the one to report
			}
			return err
		}
		return s.wrap("commit", s.commit(ctx, st.tx))
	}
	stmts := make([]Stmt, len(st.pending))
	for i, p := range st.pending {
		p.Query = s.q(p.Query)
		stmts[i] = p
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return s.wrap("commit", err)
	}
	defer conn.Close()
	done := s.trip(ctx, "batch")
	i, err := s.d.ExecBatch(ctx, conn, stmts)
	done(err)
	switch {
	case err == nil:
		return nil
	case i < 0 || i >= len(stmts):
		return s.wrap("commit", err)
	}
	return s.result(stmts[i], nil, err)
}

// BeginTX implements fosite's storage.Transactional: it returns a context
// that carries a new write set (see txState). Every Store method called
// with that context belongs to the transaction.
func (s *Store) BeginTX(ctx context.Context) (context.Context, error) {
	if s.state(ctx) != nil {
		return ctx, fmt.Errorf("%s: begin: a transaction is already in progress", s.d.Name)
	}
	return context.WithValue(ctx, txKey{}, &txState{s: s}), nil
}

// Commit implements fosite's storage.Transactional. A queued conditional
// write that finds its token already used fails here, with the error its
// method documents, and nothing of the transaction is written.
func (s *Store) Commit(ctx context.Context) error {
	st := s.state(ctx)
	if st == nil {
		return fmt.Errorf("%s: commit: no transaction in context", s.d.Name)
	}
	if st.done {
		return fmt.Errorf("%s: commit: the transaction has already ended", s.d.Name)
	}
	defer st.end()
	var err error
	if st.tx == nil {
		err = st.flush(ctx)
		st.pending, st.done = nil, true
	} else {
		st.done = true
		err = s.wrap("commit", s.commit(ctx, st.tx))
	}
	if err == nil {
		for _, f := range st.committed {
			f()
		}
	}
	st.committed = nil
	return err
}

// Rollback implements fosite's storage.Transactional. Rolling back a
// transaction that has ended (a failed Commit, say) does nothing.
func (s *Store) Rollback(ctx context.Context) error {
	st := s.state(ctx)
	if st == nil {
		return fmt.Errorf("%s: rollback: no transaction in context", s.d.Name)
	}
	st.pending = nil
	defer st.end()
	if st.done {
		return nil
	}
	st.done = true
	if st.tx == nil {
		return nil
	}
	done := s.trip(ctx, "rollback")
	err := st.tx.Rollback()
	done(err)
	return s.wrap("rollback", err)
}

// maxAttempts bounds the retries of inTx on unique violations and
// retryable conflicts.
const maxAttempts = 10

// inTx runs fn in the context's transaction, or else in a new one that it
// commits, retrying fn on unique violations and retryable conflicts when the
// transaction is its own (fn must then be safe to rerun).
func (s *Store) inTx(ctx context.Context, op string, retry bool, fn func(ctx context.Context) error) error {
	if st := s.state(ctx); st != nil {
		if err := st.begin(ctx); err != nil {
			return err
		}
		return fn(ctx)
	}
	var err error
	for range maxAttempts {
		err = s.runTx(ctx, op, fn)
		if !retry || err == nil || !(errors.Is(err, storage.ErrAlreadyExists) || errors.Is(err, fosite.ErrSerializationFailure)) {
			return err
		}
	}
	return err
}

func (s *Store) runTx(ctx context.Context, op string, fn func(ctx context.Context) error) (err error) {
	s.warm(ctx)
	done := s.trip(ctx, "begin")
	tx, err := s.w.BeginTx(ctx, nil)
	done(err)
	if err != nil {
		return s.wrap(op, err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := fn(context.WithValue(ctx, txKey{}, &txState{s: s, tx: tx})); err != nil {
		return err
	}
	return s.wrap(op, s.commit(ctx, tx))
}

// readTx returns the transaction a read in ctx must use: none (the reader)
// outside transactions and in a write set with nothing queued yet.
func (s *Store) readTx(ctx context.Context) (*sql.Tx, error) {
	st := s.state(ctx)
	if st == nil || (st.tx == nil && len(st.pending) == 0) {
		return nil, nil
	}
	if err := st.begin(ctx); err != nil {
		return nil, err
	}
	return st.tx, nil
}

// commit commits tx, observed as a round trip.
func (s *Store) commit(ctx context.Context, tx *sql.Tx) error {
	done := s.trip(ctx, "commit")
	err := tx.Commit()
	done(err)
	return err
}
