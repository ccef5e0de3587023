package provider

import (
	"github.com/google/uuid"
)

// newRequestID is the ID of a new grant: the request_id that every token
// row of the grant (authorization code, PKCE and OIDC rows, access and
// refresh tokens through every rotation) carries and that revocation finds
// them by. fosite's own IDs are random UUIDs (version 4); a version 7 UUID
// starts with the time in milliseconds, so new grants' IDs sort after the
// older ones and each insert into a request_id index lands at its right
// edge, in pages that are already in the database's cache, instead of in a
// random leaf of an index of millions of rows (a page read, and a page
// written back, per insert: docs/scale.md). The rest is random: an ID
// reveals when the grant began, which its tokens' iat say anyway.
//
// Handlers of grants that begin a grant set it (the Mini Program, client
// credentials and device grants, an authorization request); the refresh
// and authorization code grants keep the ID of the grant they continue, as
// fosite has them do.
func newRequestID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString() // no time or randomness to be had: fosite's own kind
	}
	return id.String()
}
