package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// event is one entry of the audit trail, as GET /admin/events shows it.
type event struct {
	ID       string         `json:"id"`
	Time     time.Time      `json:"time"`
	Type     string         `json:"type"`
	Subject  string         `json:"sub"`
	ClientID string         `json:"client_id"`
	IP       string         `json:"ip"`
	Details  map[string]any `json:"details"`
}

type eventList struct {
	Events        []event `json:"events"`
	NextPageToken string  `json:"next_page_token"`
}

// eventTypes are the types the filter offers (SPEC §10).
var eventTypes = []string{
	"login", "login_failed", "user_created", "identity_linked", "identity_unlinked", "user_updated",
	"user_disabled", "user_enabled", "user_deleted", "sessions_ended", "phone_bound", "consent_granted",
	"consent_withdrawn", "refresh_token_reused", "client_created", "client_updated", "client_deleted",
	"client_secret_rotated", "key_rotated", "initial_access_token_created", "initial_access_token_revoked",
}

// dateLayout is the value of an <input type="date">.
const dateLayout = "2006-01-02"

// eventList shows the audit trail, newest first, filtered by type, user,
// app and time (days, UTC), a page at a time.
func (h *Handler) eventList(w http.ResponseWriter, r *http.Request, op *operator) {
	q := r.URL.Query()
	f := map[string]string{}
	api := url.Values{"limit": {"50"}}
	for _, k := range []string{"type", "sub", "client_id", "page_token"} {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			f[k] = v
			api.Set(k, v)
		}
	}
	data := map[string]any{"Nav": "events", "F": f, "Types": eventTypes}
	for _, k := range []string{"since", "until"} {
		v := strings.TrimSpace(q.Get(k))
		if v == "" {
			continue
		}
		d, err := time.Parse(dateLayout, v)
		if err != nil {
			data["Error"] = msg(h.locale(r), "events.badDate")
			continue
		}
		f[k] = v
		if k == "until" {
			d = d.AddDate(0, 0, 1) // the whole day
		}
		api.Set(k, d.UTC().Format(time.RFC3339))
	}
	var list eventList
	err := h.call(r.Context(), *op, http.MethodGet, "/admin/events?"+api.Encode(), nil, &list)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		data["Error"] = ae.Description
	case err != nil:
		h.serverError(w, r, "list events", err)
		return
	}
	data["Events"] = list.Events
	if list.NextPageToken != "" {
		next := url.Values{}
		for k, v := range f {
			next.Set(k, v)
		}
		next.Set("page_token", list.NextPageToken)
		data["Next"] = Prefix + "events?" + next.Encode()
	}
	h.render(w, r, http.StatusOK, "events", op, data)
}
