// Package sqlstore implements [storage.Storage] on database/sql, once for
// every SQL backend; a small [Dialect] carries what differs between
// databases.
//
// The thin backend packages (storage/sqlite, storage/postgres) open the
// connections, embed their own goose migrations and pass both in through
// [Config]. sqlstore imports no database driver and contains nothing specific
// to one database: it writes portable SQL (ON CONFLICT upserts, LIMIT-ed
// subqueries, TRUE/FALSE) with ? placeholders, rebound to $n for dialects
// that number them.
//
// # Storage decisions
//
//   - Every fosite artifact is keyed by the hex SHA-256 of its signature (of
//     the raw code, for OpenID Connect sessions; of the request URI, for PAR;
//     of the JTI, for client assertions), so JWT signatures of any length fit
//     and the database never holds a usable key.
//   - Times are BIGINT Unix microseconds, UTC. The zero time.Time is stored
//     as 0. Every time read back is UTC at microsecond precision.
//   - expires_at of an artifact is the expiry its session sets for the
//     artifact's token type (authorize code for codes, PKCE and OpenID Connect
//     sessions; the PAR context for PAR). When the session sets none, a
//     refresh token never expires (stored as 9999-12-31, as fosite treats it
//     as valid forever), and anything else expires 30 days after its request
//     time. DeleteExpired removes rows by expires_at only, so used refresh
//     tokens stay until they expire and reuse detection keeps working.
//   - Single use (codes, refresh tokens, JTIs) is enforced by conditional
//     statements with rowcount checks (or, in PostgreSQL batches, functions
//     that raise), never by read-then-write, so it holds across replicas at
//     READ COMMITTED.
//   - A transaction begun by BeginTX queues its writes and sends them at
//     Commit, as one batch (PostgreSQL: one round trip, one implicit
//     transaction) or one short transaction on the single writer (SQLite);
//     see txState. A token step costs one read and one write round trip.
//   - An authorization code's PKCE and OpenID Connect sessions created in
//     the code's write set (the authorization response) are kept in the
//     code's row: their form values (pkce_form, oidc_form; the rest of their
//     request is the code's) and the OpenID Connect session's key (oidc_key,
//     indexed). One insert instead of three; the exchange's invalidation of
//     the code deletes both sessions in the same update. Sessions created
//     apart from their code have rows of their own (oauth2_pkce,
//     oauth2_oidc), and reads look in both.
//   - Clients and users carry a version column for compare-and-swap updates.
//
// It does not open databases, parse DSNs or pick connection strategies; the
// backend packages do.
package sqlstore
