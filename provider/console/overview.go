package console

import "net/http"

// overview shows the counts an operator looks at first.
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
	h.render(w, r, http.StatusOK, "overview", op, map[string]any{
		"Nav": "overview", "Apps": len(clients.Clients), "ActiveKeys": active,
	})
}
