package storage

import (
	"context"
	"time"
)

// RefreshSuccessor is what the token endpoint answered to the refresh that
// rotated a refresh token, kept for the refresh token's reuse grace: a
// client that presents the rotated token again within the grace (two
// pages of a Mini Program refreshing at once) gets the same answer instead
// of having its grant revoked.
type RefreshSuccessor struct {
	// Signature is the rotated refresh token's signature; backends key the
	// record by its hash.
	Signature string
	// SuccessorSignature is the signature of the refresh token the answer
	// carries; the grace holds only while that token is active.
	SuccessorSignature string
	// Response is the answer, encrypted by the caller.
	Response []byte
	// ExpiresAt is when the grace ends.
	ExpiresAt time.Time
}

// RefreshGraceStore keeps the answers of recent refreshes, shared by every
// replica.
type RefreshGraceStore interface {
	// PutRefreshSuccessor stores s unless a record for s.Signature exists
	// (the first answer stays); it is not an error either way.
	PutRefreshSuccessor(ctx context.Context, s RefreshSuccessor) error
	// RefreshSuccessor returns the record of the rotated token's
	// signature, or ErrNotFound if there is none or its grace has ended at
	// now.
	RefreshSuccessor(ctx context.Context, signature string, now time.Time) (RefreshSuccessor, error)
}
