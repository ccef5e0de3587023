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

// ErrUnavailable reports that the database could not be reached or went
// away; a retry may succeed. See also IsUnavailable.
var ErrUnavailable = errors.New("storage: unavailable")

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

// IsUnavailable reports whether err is, or wraps, ErrUnavailable: a
// backend found that the database could not be reached or went away, rather
// than that a query was wrong. The provider answers such failures with 503
// and a retry, not 500.
//
// Only the backends classify: a network error from anything else (WeChat,
// say) is not a storage outage, so IsUnavailable does not guess from an
// error's type.
func IsUnavailable(err error) bool {
	return errors.Is(err, ErrUnavailable)
}
