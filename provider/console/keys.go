package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// keyDoc is a signing key as the admin API shows it.
type keyDoc struct {
	KID         string     `json:"kid"`
	Algorithm   string     `json:"alg"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiredAt   *time.Time `json:"retired_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
}

type keyList struct {
	Keys []keyDoc `json:"keys"`
}

// keyList shows every key, newest first, with its state and dates.
func (h *Handler) keyList(w http.ResponseWriter, r *http.Request, op *operator) {
	var list keyList
	if err := h.call(r.Context(), *op, http.MethodGet, "/admin/keys", nil, &list); err != nil {
		h.serverError(w, r, "list keys", err)
		return
	}
	keys := make([]keyDoc, 0, len(list.Keys))
	var algs []string
	for i := len(list.Keys) - 1; i >= 0; i-- { // the API lists oldest first
		k := list.Keys[i]
		keys = append(keys, k)
		if !has(algs, k.Algorithm) {
			algs = append(algs, k.Algorithm)
		}
	}
	data := map[string]any{"Nav": "keys", "Keys": keys, "Algs": algs}
	if f := r.URL.Query().Get("rotated"); f != "" && len(f) < 512 {
		data["Rotated"] = f
	}
	h.render(w, r, http.StatusOK, "keys", op, data)
}

// keyRotate rotates the keys of one algorithm, or of all.
func (h *Handler) keyRotate(w http.ResponseWriter, r *http.Request, op *operator) {
	body := map[string][]string{}
	if a := r.PostFormValue("alg"); a != "" {
		body["algorithms"] = []string{a}
	}
	var out keyList
	err := h.call(r.Context(), *op, http.MethodPost, "/admin/keys/rotate", body, &out)
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		h.render(w, r, ae.Status, "error", op, map[string]any{"Raw": ae.Description, "Status": ae.Status, "Nav": "keys"})
		return
	case err != nil:
		h.serverError(w, r, "rotate keys", err)
		return
	}
	var kids []string
	for _, k := range out.Keys {
		kids = append(kids, k.Algorithm+" "+k.KID)
	}
	h.log.InfoContext(r.Context(), "console: keys rotated", "kids", kids, "operator", op.name())
	http.Redirect(w, r, Prefix+"keys?rotated="+url.QueryEscape(strings.Join(kids, ", ")), http.StatusSeeOther)
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
