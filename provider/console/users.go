package console

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// user is the admin API's user document (SPEC §10).
type user struct {
	Subject             string     `json:"sub"`
	Name                string     `json:"name"`
	Picture             string     `json:"picture"`
	PhoneNumber         string     `json:"phone_number"`
	PhoneNumberVerified bool       `json:"phone_number_verified"`
	ExternalID          string     `json:"external_id"`
	Roles               []string   `json:"roles"`
	Disabled            bool       `json:"disabled"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
	LastLoginAt         *time.Time `json:"last_login_at"`
	Identities          []identity `json:"identities"`
	Consents            []consent  `json:"consents"`
	Sessions            []sess     `json:"sessions"`
}

type identity struct {
	AppID       string     `json:"appid"`
	Kind        string     `json:"kind"`
	OpenID      string     `json:"openid"`
	UnionID     string     `json:"unionid"`
	CreatedAt   time.Time  `json:"created_at"`
	LastLoginAt *time.Time `json:"last_login_at"`
}

type consent struct {
	ClientID  string     `json:"client_id"`
	Scopes    []string   `json:"scopes"`
	Scope     string     `json:"scope"`
	GrantedAt *time.Time `json:"granted_at"`
}

type sess struct {
	ID        string     `json:"id"`
	AuthTime  *time.Time `json:"auth_time"`
	CreatedAt *time.Time `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

type userList struct {
	Users         []user `json:"users"`
	NextPageToken string `json:"next_page_token"`
}

// searchKinds are the ways to find users, as GET /admin/users names them.
var searchKinds = []string{"phone_number", "openid", "unionid", "external_id", "q"}

var mainlandMobile = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

// phoneE164 accepts a number as people type it: a mainland China mobile
// number without +86 gets it; spaces and dashes go.
func phoneE164(s string) string {
	s = strings.NewReplacer(" ", "", "-", "").Replace(s)
	if mainlandMobile.MatchString(s) {
		return "+86" + s
	}
	return s
}

// userList finds users: by the chosen kind and value, a page at a time.
func (h *Handler) userList(w http.ResponseWriter, r *http.Request, op *operator) {
	q := r.URL.Query()
	by, v := q.Get("by"), strings.TrimSpace(q.Get("v"))
	if !slices.Contains(searchKinds, by) {
		by = "phone_number"
	}
	api := url.Values{"limit": {"50"}}
	if v != "" {
		if by == "phone_number" {
			api.Set(by, phoneE164(v))
		} else {
			api.Set(by, v)
		}
	}
	if pt := q.Get("page_token"); pt != "" {
		api.Set("page_token", pt)
	}
	var list userList
	err := h.call(r.Context(), *op, http.MethodGet, "/admin/users?"+api.Encode(), nil, &list)
	var ae *apiError
	data := map[string]any{"Nav": "users", "By": by, "V": v, "Kinds": searchKinds, "Flash": flash(r)}
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusBadRequest:
		data["Error"] = ae.Description
	case err != nil:
		h.serverError(w, r, "search users", err)
		return
	}
	data["Users"] = list.Users
	if list.NextPageToken != "" {
		next := url.Values{"by": {by}, "v": {v}, "page_token": {list.NextPageToken}}
		data["Next"] = Prefix + "users?" + next.Encode()
	}
	h.render(w, r, http.StatusOK, "users", op, data)
}

// userShow shows one user: identities per app, consents, active sessions
// and recent events, with the actions.
func (h *Handler) userShow(w http.ResponseWriter, r *http.Request, op *operator) {
	h.renderUser(w, r, op, pathVar(r, "sub"), http.StatusOK, "")
}

// renderUser shows user sub's page, with the API's complaint about a
// change when problem is set.
func (h *Handler) renderUser(w http.ResponseWriter, r *http.Request, op *operator, sub string, status int, problem string) {
	var u user
	err := h.call(r.Context(), *op, http.MethodGet, "/admin/users/"+url.PathEscape(sub), nil, &u)
	if isStatus(err, http.StatusNotFound) || isStatus(err, http.StatusBadRequest) {
		h.render(w, r, http.StatusNotFound, "error", op, map[string]any{"Message": "users.notFound", "Status": 404, "Nav": "users"})
		return
	}
	if err != nil {
		h.serverError(w, r, "get user", err)
		return
	}
	var events eventList
	if err := h.call(r.Context(), *op, http.MethodGet, "/admin/events?"+url.Values{"sub": {sub}, "limit": {"20"}}.Encode(), nil, &events); err != nil {
		h.serverError(w, r, "list the user's events", err)
		return
	}
	h.render(w, r, status, "user", op, map[string]any{
		"Nav": "users", "U": u, "Events": events.Events, "Flash": flash(r), "Error": problem,
		"IsAdmin": slices.Contains(u.Roles, roleAdmin), "IsViewer": slices.Contains(u.Roles, roleViewer),
	})
}

// userChange runs one change of a user through the admin API and goes
// back to the user's page (or, after a deletion, to the list).
func (h *Handler) userChange(w http.ResponseWriter, r *http.Request, op *operator) {
	sub := pathVar(r, "sub")
	base := "/admin/users/" + url.PathEscape(sub)
	back := Prefix + "users/" + url.PathEscape(sub)
	var method, path, done string
	var body any
	switch pathVar(r, "action") {
	case "edit":
		method, path, done = http.MethodPatch, base, "users.saved"
		patch := map[string]any{}
		for _, k := range []string{"name", "phone_number", "external_id"} {
			v := strings.TrimSpace(r.PostFormValue(k))
			if k == "phone_number" {
				v = phoneE164(v)
			}
			if v == "" {
				patch[k] = nil // a merge patch's null clears the field
			} else {
				patch[k] = v
			}
		}
		body = patch
	case "disable":
		method, path, body, done = http.MethodPatch, base, map[string]any{"disabled": true}, "users.disabled"
	case "enable":
		method, path, body, done = http.MethodPatch, base, map[string]any{"disabled": false}, "users.enabled"
	case "roles":
		roles := []string{}
		for _, role := range r.PostForm["roles"] {
			if (role == roleAdmin || role == roleViewer) && !slices.Contains(roles, role) {
				roles = append(roles, role)
			}
		}
		method, path, body, done = http.MethodPatch, base, map[string]any{"roles": roles}, "users.rolesSaved"
	case "signout":
		method, path, done = http.MethodDelete, base+"/sessions", "users.signedOut"
	case "unlink":
		method, path, done = http.MethodDelete, base+"/identities/"+url.PathEscape(r.PostFormValue("appid")), "users.unlinked"
	case "delete":
		if strings.TrimSpace(r.PostFormValue("confirm")) != sub {
			http.Redirect(w, r, back+"?flash=users.confirmWrong", http.StatusSeeOther)
			return
		}
		method, path, done = http.MethodDelete, base, "users.deleted"
		back = Prefix + "users"
	default:
		h.errorPage(w, r, http.StatusNotFound, "errNotFound")
		return
	}
	err := h.call(r.Context(), *op, method, path, body, nil)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		h.render(w, r, http.StatusNotFound, "error", op, map[string]any{"Message": "users.notFound", "Status": 404, "Nav": "users"})
		return
	case errors.As(err, &ae):
		// Validation (a taken external_id, a malformed phone number):
		// the page again, with the API's words.
		h.renderUser(w, r, op, sub, ae.Status, ae.Description)
		return
	case err != nil:
		h.serverError(w, r, "change user", err)
		return
	}
	h.log.InfoContext(r.Context(), "console: user changed", "sub", sub, "action", pathVar(r, "action"), "operator", op.name())
	http.Redirect(w, r, back+"?flash="+done, http.StatusSeeOther)
}
