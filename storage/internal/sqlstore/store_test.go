package sqlstore

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

func TestStore_q(t *testing.T) {
	tests := []struct {
		name     string
		numbered bool
		in, want string
	}{
		{"question marks", false, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = ? AND c = ?"},
		{"numbered", true, "SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"many", true, insertRefresh, "INSERT INTO oauth2_refresh (signature, request_id, client_id, subject, requested_at, expires_at, request, active, access_signature) VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Store{d: Dialect{NumberedPlaceholders: tc.numbered}}
			for range 2 { // the second call hits the cache
				if got := s.q(tc.in); got != tc.want {
					t.Errorf("q(%q) = %q, want %q", tc.in, got, tc.want)
				}
			}
		})
	}
}

func TestStore_wrap(t *testing.T) {
	errUnique := errors.New("unique")
	errBusy := errors.New("busy")
	s := &Store{d: Dialect{
		Name:              "test",
		IsUniqueViolation: func(err error) bool { return errors.Is(err, errUnique) },
		IsRetryable:       func(err error) bool { return errors.Is(err, errBusy) },
	}}
	tests := []struct {
		name string
		in   error
		want []error
	}{
		{"no rows", sql.ErrNoRows, []error{storage.ErrNotFound, fosite.ErrNotFound}},
		{"unique", errUnique, []error{storage.ErrAlreadyExists, errUnique}},
		{"retryable", errBusy, []error{fosite.ErrSerializationFailure, errBusy}},
		{"connection done", sql.ErrConnDone, []error{storage.ErrUnavailable, sql.ErrConnDone}},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, []error{storage.ErrUnavailable, syscall.ECONNREFUSED}},
		{"classified at the round trip", s.classify(driver.ErrBadConn), []error{storage.ErrUnavailable, driver.ErrBadConn}},
		{"other", errors.New("syntax"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.wrap("op", tc.in)
			for _, w := range tc.want {
				if !errors.Is(got, w) {
					t.Errorf("wrap(%v) = %v, want it to match %v", tc.in, got, w)
				}
			}
			if got == tc.in {
				t.Errorf("wrap(%v) returned the error bare", tc.in)
			}
		})
	}
	if s.wrap("op", nil) != nil {
		t.Error("wrap(nil) != nil")
	}
	if got := s.wrap("op", errors.New("syntax")); storage.IsUnavailable(got) {
		t.Errorf("wrap(syntax error) = %v, reported as unavailable", got)
	}
	if got := s.wrap("get client", s.classify(sql.ErrConnDone)).Error(); got != "test: get client: storage: unavailable (sql: connection is already closed)" {
		t.Errorf("wrapped classified error reads %q", got)
	}
	for _, err := range []error{nil, sql.ErrNoRows, errUnique} {
		if got := s.classify(err); got != err {
			t.Errorf("classify(%v) = %v, want it unchanged", err, got)
		}
	}
}

func TestTimes(t *testing.T) {
	if !fromMicros(micros(neverExpires)).Equal(neverExpires) {
		t.Error("neverExpires does not round-trip")
	}
	if got := fromMicros(micros(fromMicros(0))); !got.IsZero() {
		t.Errorf("zero time round-trips to %v", got)
	}
}

// TestLinkedUser_columns keeps the joined read of LinkIdentity's fast path
// in step with userColumns, which userRow scans in order.
func TestLinkedUser_columns(t *testing.T) {
	want := "SELECT i.union_id, i.kind, u." + strings.ReplaceAll(userColumns, ", ", ", u.") + " FROM"
	if !strings.HasPrefix(linkedUser, want) {
		t.Errorf("linkedUser = %q\nwant prefix %q", linkedUser, want)
	}
}

// TestGetRefreshWithUser_columns keeps the refresh read with its user in
// step with the plain one and with userColumns.
func TestGetRefreshWithUser_columns(t *testing.T) {
	if getRefreshWithUser == refreshTokens.get {
		t.Fatal("getRefreshWithUser did not add the user to refreshTokens.get")
	}
	if want := ", u." + strings.ReplaceAll(userColumns, ", ", ", u.") + " FROM"; !strings.Contains(getRefreshWithUser, want) {
		t.Errorf("getRefreshWithUser = %q\nwant it to contain %q", getRefreshWithUser, want)
	}
}
