package storage

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

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

// IsUnavailable reports whether err says the database could not be reached
// or went away (connection refused or reset, server shutting down or
// starting up, a broken pooled connection) rather than that a query was
// wrong. The provider answers such failures with 503 and a retry, not 500.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	// SQLSTATE classes 08 (connection exception) and 57P (operator
	// intervention: admin shutdown, crash shutdown, cannot connect now).
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		s := st.SQLState()
		return strings.HasPrefix(s, "08") || strings.HasPrefix(s, "57P")
	}
	return false
}
