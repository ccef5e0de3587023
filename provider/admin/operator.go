package admin

import (
	"context"
	"net/http"
)

type operatorKey struct{}

// WithOperator returns ctx naming op (e.g. "user:<sub>" or "admin-token")
// as the person behind an admin API request. The admin console calls the
// API in process with it, so that changes are recorded under the operator
// who made them, not only under the token. It is a request-scoped value:
// a caller over HTTP cannot set it.
func WithOperator(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, operatorKey{}, op)
}

// Operator names who made request r: the operator of WithOperator, else
// "admin-token" (a caller of the API over HTTP, who holds the token).
func Operator(r *http.Request) string {
	if op, _ := r.Context().Value(operatorKey{}).(string); op != "" {
		return op
	}
	return "admin-token"
}
