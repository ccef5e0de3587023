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

// recorded makes a change and stores the events that record it in one
// transaction, when the API keeps an audit trail (Config.Users or
// Config.Audit): both are kept, or, when the change or the events fail,
// neither. change returns the events (with the change's error); each names
// the request's operator in details.by. change must make its storage
// calls with the context it is given. Without an audit trail recorded
// only makes the change.
func (h *Handler) recorded(r *http.Request, change func(ctx context.Context) ([]storage.Event, error)) error {
	if h.cfg.Users == nil && h.cfg.Audit == nil {
		_, err := change(r.Context())
		return err
	}
	op := Operator(r)
	return h.audit().RecordAfter(r.Context(), func(ctx context.Context) ([]storage.Event, error) {
		evs, err := change(ctx)
		for i := range evs {
			if evs[i].Details == nil {
				evs[i].Details = map[string]any{}
			}
			evs[i].Details["by"] = op
		}
		return evs, err
	})
}
