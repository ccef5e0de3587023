package sqlstore

import (
	"context"
	"strings"

	"github.com/wxoidc/wxoidc/storage"
)

var _ storage.Observable = (*Store)(nil)

// Observe implements storage.Observable. Call it before the store is used.
func (s *Store) Observe(o storage.Observer) { s.observer = o }

// noop is the done function when nobody observes.
func noop(error) {}

// trip starts observing a round trip named op; call the result with its
// error. Without an observer it costs a nil check.
func (s *Store) trip(ctx context.Context, op string) func(error) {
	if s.observer == nil {
		return noop
	}
	return s.observer(ctx, op)
}

// tripQuery is trip for a statement, named by its verb and table.
func (s *Store) tripQuery(ctx context.Context, query string) func(error) {
	if s.observer == nil {
		return noop
	}
	name, ok := s.names.Load(query)
	if !ok {
		name, _ = s.names.LoadOrStore(query, statementName(query))
	}
	return s.observer(ctx, name.(string))
}

// statementName names a statement for observers: its verb and the table
// (or function) it works on, "select oauth2_refresh"; never its arguments.
// A statement with common table expressions is "with" and the name of its
// main statement, which must then follow a line break after the last
// expression's closing parenthesis.
func statementName(query string) string {
	f := strings.Fields(query)
	if len(f) == 0 {
		return "statement"
	}
	verb := strings.ToLower(f[0])
	if verb == "with" {
		// WITH … )\nMAIN: named by its main statement.
		if i := strings.LastIndex(query, ")\n"); i >= 0 {
			return "with " + statementName(query[i+2:])
		}
		return verb
	}
	var after string
	switch verb {
	case "insert":
		after = "into"
	case "delete", "select":
		after = "from"
	case "update":
		if len(f) > 1 {
			return verb + " " + f[1]
		}
	}
	for i, w := range f[:len(f)-1] {
		if strings.EqualFold(w, after) {
			return verb + " " + strings.Trim(f[i+1], "()")
		}
	}
	if verb == "select" && len(f) > 1 { // SELECT fn(?, ?)
		name, _, _ := strings.Cut(f[1], "(")
		return verb + " " + name
	}
	return verb
}
