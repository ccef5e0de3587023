package console

import (
	"net/http"
	"time"
)

// wechatHealth is the admin API's answer to GET /admin/wechat.
type wechatHealth struct {
	Apps []struct {
		AppID                string     `json:"appid"`
		Kind                 string     `json:"kind"`
		ServerTokenExpiresAt *time.Time `json:"server_token_expires_at"`
		Calls                *struct {
			Since  time.Time `json:"since"`
			Calls  int64     `json:"calls"`
			Failed int64     `json:"failed"`
			Recent []struct {
				Time    time.Time `json:"time"`
				API     string    `json:"api"`
				Errcode string    `json:"errcode"`
			} `json:"recent_failures"`
		} `json:"calls"`
	} `json:"apps"`
}

// overview shows the counts an operator looks at first and the health of
// the WeChat upstream.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request, op *operator) {
	var clients clientList
	if err := h.call(r.Context(), *op, http.MethodGet, "/admin/clients", nil, &clients); err != nil {
		h.serverError(w, r, "list clients", err)
		return
	}
	var keys keyList
	if err := h.call(r.Context(), *op, http.MethodGet, "/admin/keys", nil, &keys); err != nil {
		h.serverError(w, r, "list keys", err)
		return
	}
	active := 0
	for _, k := range keys.Keys {
		if k.State == "active" {
			active++
		}
	}
	var health wechatHealth
	if err := h.call(r.Context(), *op, http.MethodGet, "/admin/wechat", nil, &health); err != nil {
		h.serverError(w, r, "read WeChat health", err)
		return
	}
	data := map[string]any{"Nav": "overview", "Apps": len(clients.Clients), "ActiveKeys": active, "WeChat": health.Apps, "Now": h.cfg.Now()}
	st, err := h.stats(r.Context())
	if err != nil {
		h.serverError(w, r, "count statistics", err)
		return
	}
	if st != nil {
		data["Users"] = st.Users
		data["SignIns"], data["NewUsers"] = charts(h.locale(r), st)
	}
	h.render(w, r, http.StatusOK, "overview", op, data)
}
