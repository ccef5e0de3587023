package admin

import (
	"net/http"
	"strconv"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

const pathStats = "/admin/stats"

// statsDoc is the answer of GET /admin/stats.
type statsDoc struct {
	// Users is how many users exist.
	Users int64 `json:"users"`
	// Days are the last days (UTC), oldest first, the last one today.
	Days []dayDoc `json:"days"`
}

type dayDoc struct {
	Day string `json:"day"` // YYYY-MM-DD
	// Logins counts the day's sign-ins by method (wechat_jscode,
	// wechat_qr, …; "" for a login event that names none).
	Logins map[string]int64 `json:"logins"`
	// NewUsers counts the users created that day.
	NewUsers int64 `json:"new_users"`
}

// maxStatsDays bounds GET /admin/stats?days.
const maxStatsDays = 92

// stats answers GET /admin/stats?days=N (default 30): the user count and,
// per day, sign-ins by method and new users, counted from the audit trail
// by the store (never read out).
func (h *Handler) stats(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Stats == nil {
		writeError(w, http.StatusNotFound, "not_found", "This storage keeps no statistics.")
		return
	}
	days := 30
	if v := r.URL.Query().Get("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxStatsDays {
			writeError(w, http.StatusBadRequest, "invalid_request", "days must be a whole number from 1 to "+strconv.Itoa(maxStatsDays)+".")
			return
		}
		days = n
	}
	ctx := r.Context()
	users, err := h.cfg.Stats.CountUsers(ctx)
	if err != nil {
		h.serverError(w, r, "count users", err)
		return
	}
	today := storage.DayOf(h.cfg.Now())
	since := today.AddDate(0, 0, 1-days)
	counts, err := h.cfg.Stats.CountEvents(ctx, []string{"login", "user_created"}, since, today.AddDate(0, 0, 1))
	if err != nil {
		h.serverError(w, r, "count events", err)
		return
	}
	out := statsDoc{Users: users, Days: make([]dayDoc, days)}
	for i := range out.Days {
		out.Days[i] = dayDoc{Day: since.AddDate(0, 0, i).Format(time.DateOnly), Logins: map[string]int64{}}
	}
	for _, c := range counts {
		i := int(c.Day.Sub(since) / (24 * time.Hour))
		if i < 0 || i >= days {
			continue
		}
		switch c.Type {
		case "login":
			out.Days[i].Logins[c.Method] += c.Count
		case "user_created":
			out.Days[i].NewUsers += c.Count
		}
	}
	writeJSON(w, http.StatusOK, out)
}
