package storage

import (
	"errors"

	"github.com/ory/fosite"
)

// ErrNotFound reports that the requested record does not exist (or has
// expired, for records with a lifetime). It also satisfies
// errors.Is(err, fosite.ErrNotFound), because fosite's flows branch on exactly
// that.
var ErrNotFound error = notFoundError{}

// ErrAlreadyExists reports that a record with the same key already exists.
var ErrAlreadyExists = errors.New("storage: already exists")

// ErrConflict reports a lost compare-and-swap or an optimistic-concurrency
// failure: the caller may reload and retry.
var ErrConflict = errors.New("storage: conflict")

type notFoundError struct{}

func (notFoundError) Error() string { return "storage: not found" }

// Is makes ErrNotFound match fosite.ErrNotFound as well, so fosite's
// errors.Is checks work on what backends return.
func (notFoundError) Is(target error) bool {
	return target == fosite.ErrNotFound
}
