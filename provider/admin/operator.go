package admin

import (
	"context"
	"net/http"

	"github.com/wxoidc/wxoidc/storage"
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

// record stores ev in the audit trail, naming the request's operator in
// details.by, when the API keeps one (Config.Users or Config.Audit). A
// failure to store it is logged by the audit trail, not returned: the
// change it records has been made.
func (h *Handler) record(r *http.Request, ev storage.Event) {
	if h.cfg.Users == nil && h.cfg.Audit == nil {
		return
	}
	if ev.Details == nil {
		ev.Details = map[string]any{}
	}
	ev.Details["by"] = Operator(r)
	h.audit().Record(r.Context(), ev)
}
