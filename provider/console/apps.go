package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/wxoidc/wxoidc/provider"
)

// clientList is the admin API's answer to GET /admin/clients.
type clientList struct {
	Clients []provider.ClientMetadata `json:"clients"`
}

// appList shows every app.
func (h *Handler) appList(w http.ResponseWriter, r *http.Request, op *operator) {
	var list clientList
	if err := h.call(r.Context(), *op, http.MethodGet, "/admin/clients", nil, &list); err != nil {
		h.serverError(w, r, "list clients", err)
		return
	}
	h.render(w, r, http.StatusOK, "apps", op, map[string]any{"Nav": "apps", "Apps": list.Clients, "Flash": flash(r)})
}

// appForm is the app form's state: the document, and the API's error on
// the field it names.
type appForm struct {
	New   bool
	M     provider.ClientMetadata
	Field string // the field in error
	Error string // the API's description
}

func (h *Handler) formData(op *operator, f appForm) map[string]any {
	apps := slices.Clone(h.cfg.WeChatApps)
	sort.Slice(apps, func(i, j int) bool { return apps[i].AppID < apps[j].AppID })
	return map[string]any{
		"Nav": "apps", "Form": f, "WeChatApps": apps, "GrantTypes": h.cfg.GrantTypes,
		"AuthMethods": []string{"client_secret_basic", "client_secret_post", "none"},
		"Algs":        []string{"RS256", "ES256", "EdDSA"},
	}
}

// appNew shows the empty app form.
func (h *Handler) appNew(w http.ResponseWriter, r *http.Request, op *operator) {
	m := provider.ClientMetadata{GrantTypes: []string{"authorization_code", "refresh_token"}, Scope: "openid profile", IDTokenSignedResponseAlg: "RS256"}
	h.render(w, r, http.StatusOK, "app", op, h.formData(op, appForm{New: true, M: m}))
}

// appShow shows one app's form.
func (h *Handler) appShow(w http.ResponseWriter, r *http.Request, op *operator) {
	id := pathVar(r, "id")
	var m provider.ClientMetadata
	err := h.call(r.Context(), *op, http.MethodGet, "/admin/clients/"+url.PathEscape(id), nil, &m)
	if isStatus(err, http.StatusNotFound) || isStatus(err, http.StatusBadRequest) {
		h.render(w, r, http.StatusNotFound, "error", op, map[string]any{"Message": "apps.notFound", "Status": 404, "Nav": "apps"})
		return
	}
	if err != nil {
		h.serverError(w, r, "get client", err)
		return
	}
	data := h.formData(op, appForm{M: m})
	data["Flash"] = flash(r)
	h.render(w, r, http.StatusOK, "app", op, data)
}

// applyForm sets the fields of the app form on m. Fields the form does not
// show (jwks, request objects, back-channel logout, …) keep their values:
// the admin API's PUT replaces the whole document.
func applyForm(m *provider.ClientMetadata, r *http.Request) {
	f := r.PostForm
	m.ClientName = strings.TrimSpace(f.Get("client_name"))
	m.RedirectURIs = lines(f.Get("redirect_uris"))
	m.PostLogoutRedirectURIs = lines(f.Get("post_logout_redirect_uris"))
	m.GrantTypes = f["grant_types"]
	m.ResponseTypes = nil // the default follows the grant types
	m.Scope = strings.Join(strings.Fields(f.Get("scope")), " ")
	m.Audience = lines(f.Get("audience"))
	m.TokenEndpointAuthMethod = f.Get("token_endpoint_auth_method")
	m.IDTokenSignedResponseAlg = f.Get("id_token_signed_response_alg")
	m.WeChatAppID = f.Get("wechat_appid")
	m.SkipConsent = f.Get("skip_consent") == "on"
	m.ClientIDIssuedAt, m.ClientSecretExpiresAt, m.ClientSecret = 0, nil, ""
}

// lines splits a textarea into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// appCreate creates an app; a confidential app's secret is shown on the
// answer page, once.
func (h *Handler) appCreate(w http.ResponseWriter, r *http.Request, op *operator) {
	m := provider.ClientMetadata{ClientID: strings.TrimSpace(r.PostForm.Get("client_id"))}
	applyForm(&m, r)
	var out provider.ClientMetadata
	err := h.call(r.Context(), *op, http.MethodPost, "/admin/clients", m, &out)
	if h.formFailed(w, r, op, appForm{New: true, M: m}, err) {
		return
	}
	h.log.InfoContext(r.Context(), "console: app created", "client_id", out.ClientID, "operator", op.name())
	if out.ClientSecret != "" {
		h.showSecret(w, r, op, out, "apps.created.ok")
		return
	}
	http.Redirect(w, r, Prefix+"apps/"+url.PathEscape(out.ClientID)+"?flash=apps.created.ok", http.StatusSeeOther)
}

// appUpdate replaces an app's metadata (PUT); a client made confidential
// gets a secret, shown once.
func (h *Handler) appUpdate(w http.ResponseWriter, r *http.Request, op *operator) {
	id := pathVar(r, "id")
	var m provider.ClientMetadata
	err := h.call(r.Context(), *op, http.MethodGet, "/admin/clients/"+url.PathEscape(id), nil, &m)
	if h.formFailed(w, r, op, appForm{M: m}, err) {
		return
	}
	applyForm(&m, r)
	var out provider.ClientMetadata
	err = h.call(r.Context(), *op, http.MethodPut, "/admin/clients/"+url.PathEscape(id), m, &out)
	if h.formFailed(w, r, op, appForm{M: m}, err) {
		return
	}
	h.log.InfoContext(r.Context(), "console: app updated", "client_id", id, "operator", op.name())
	if out.ClientSecret != "" {
		h.showSecret(w, r, op, out, "apps.saved")
		return
	}
	http.Redirect(w, r, Prefix+"apps/"+url.PathEscape(id)+"?flash=apps.saved", http.StatusSeeOther)
}

// formFailed shows the form again with the API's error on its field, and
// reports whether err was one.
func (h *Handler) formFailed(w http.ResponseWriter, r *http.Request, op *operator, f appForm, err error) bool {
	var ae *apiError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		h.render(w, r, http.StatusNotFound, "error", op, map[string]any{"Message": "apps.notFound", "Status": 404, "Nav": "apps"})
	case errors.As(err, &ae):
		f.Field, f.Error = ae.Field, ae.Description
		if f.Field == "" && ae.Code == "invalid_redirect_uri" {
			f.Field = "redirect_uris"
		}
		if f.Field == "" {
			f.Field = "form"
		}
		h.render(w, r, ae.Status, "app", op, h.formData(op, f))
	default:
		h.serverError(w, r, "save client", err)
	}
	return true
}

// showSecret shows a new client secret, this once: the answer is not
// cached, and nothing else ever shows it again.
func (h *Handler) showSecret(w http.ResponseWriter, r *http.Request, op *operator, m provider.ClientMetadata, flashKey string) {
	h.render(w, r, http.StatusOK, "secret", op, map[string]any{"Nav": "apps", "App": m, "Flash": flashKey})
}

// appRotateSecret gives a confidential app a new secret, shown once.
func (h *Handler) appRotateSecret(w http.ResponseWriter, r *http.Request, op *operator) {
	id := pathVar(r, "id")
	var out provider.ClientMetadata
	err := h.call(r.Context(), *op, http.MethodPost, "/admin/clients/"+url.PathEscape(id)+"/secret", struct{}{}, &out)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		h.render(w, r, http.StatusNotFound, "error", op, map[string]any{"Message": "apps.notFound", "Status": 404, "Nav": "apps"})
	case errors.As(err, &ae):
		h.render(w, r, ae.Status, "error", op, map[string]any{"Raw": ae.Description, "Status": ae.Status, "Nav": "apps"})
	case err != nil:
		h.serverError(w, r, "rotate client secret", err)
	default:
		h.log.InfoContext(r.Context(), "console: app secret rotated", "client_id", id, "operator", op.name())
		h.showSecret(w, r, op, out, "")
	}
}

// appDelete deletes an app once its client_id has been typed to confirm.
func (h *Handler) appDelete(w http.ResponseWriter, r *http.Request, op *operator) {
	id := pathVar(r, "id")
	if strings.TrimSpace(r.PostFormValue("confirm")) != id {
		http.Redirect(w, r, Prefix+"apps/"+url.PathEscape(id)+"?flash=apps.confirmWrong", http.StatusSeeOther)
		return
	}
	err := h.call(r.Context(), *op, http.MethodDelete, "/admin/clients/"+url.PathEscape(id), nil, nil)
	if err != nil && !isStatus(err, http.StatusNotFound) {
		h.serverError(w, r, "delete client", err)
		return
	}
	h.log.InfoContext(r.Context(), "console: app deleted", "client_id", id, "operator", op.name())
	http.Redirect(w, r, Prefix+"apps?flash=apps.deleted", http.StatusSeeOther)
}

// flash is the message key a redirect asked the next page to show, if it
// is one of ours.
func flash(r *http.Request) string {
	k := r.URL.Query().Get("flash")
	if _, ok := messages[k]; !ok {
		return ""
	}
	return k
}
