package sqlstore

import (
	"context"
	"strings"
)

// Some writes need not wait for the database's log flush, where the
// dialect can say so per statement (Dialect.AsyncCommitFrom): those of a
// sign-in in progress (login states, the rate-limit counters that admit
// it) and the deletes of the PKCE and OpenID Connect sessions of an
// authorization code that its exchange has just spent. A database crash
// may lose the last of them (PostgreSQL writes them out within three
// wal_writer_delay, and any later synchronous commit, such as that of the
// tokens a sign-in ends with, flushes them first). Then a person starts a
// sign-in again, a rate limit forgives a request, or the janitor deletes a
// row nothing can use; none of them is a credential that outlives the
// sign-in. The flush is most of what such a write costs PostgreSQL.
//
// An asynchronous variant is only used outside transactions: inside one it
// would make the whole transaction's commit asynchronous.
type asyncQueries struct {
	createLoginState, consumeLoginState, takeRate, deletePKCE, deleteOIDC string
	deleteFoldedPKCE, deleteFoldedOIDC                                    string
}

func newAsyncQueries(from string) asyncQueries {
	if from == "" {
		return asyncQueries{}
	}
	// INSERT … SELECT needs its parameters' types (VALUES takes them
	// from the columns); only PostgreSQL has AsyncCommitFrom, hence BYTEA.
	return asyncQueries{
		createLoginState:  "INSERT INTO login_states (id_hash, data, expires_at) SELECT CAST(? AS TEXT), CAST(? AS BYTEA), CAST(? AS BIGINT) FROM " + from,
		consumeLoginState: "DELETE FROM login_states USING " + from + " WHERE id_hash = ? RETURNING data, expires_at",
		takeRate:          "INSERT INTO rate_limits (name, expires_at) SELECT CAST(? AS TEXT), CAST(? AS BIGINT) FROM " + from + takeRateConflict,
		deletePKCE:        "DELETE FROM " + pkceRequests.table + " USING " + from + " WHERE signature = ?",
		deleteOIDC:        "DELETE FROM " + oidcSessions.table + " USING " + from + " WHERE signature = ?",
		deleteFoldedPKCE:  strings.Replace(deleteFoldedPKCE, " WHERE ", " FROM "+from+" WHERE ", 1),
		deleteFoldedOIDC:  strings.Replace(deleteFoldedOIDC, " WHERE ", " FROM "+from+" WHERE ", 1),
	}
}

// async returns the asynchronous variant of a statement when there is one
// and ctx holds no transaction, else the statement itself.
func (s *Store) async(ctx context.Context, query, variant string) string {
	if variant == "" || s.state(ctx) != nil {
		return query
	}
	return variant
}
