package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/storage"
)

// keyDoc is a signing key as the admin API shows it.
type keyDoc struct {
	KID         string     `json:"kid"`
	Algorithm   string     `json:"alg"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	ActivatesAt time.Time  `json:"activates_at"`
	RetiredAt   *time.Time `json:"retired_at,omitempty"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

func keyDocs(infos []keys.KeyInfo) map[string][]keyDoc {
	out := make([]keyDoc, 0, len(infos))
	for _, k := range infos {
		d := keyDoc{KID: k.KID, Algorithm: k.Algorithm, State: string(k.State),
			CreatedAt: k.CreatedAt.UTC(), ActivatesAt: k.ActivatesAt.UTC()}
		if !k.RetiredAt.IsZero() {
			t := k.RetiredAt.UTC()
			d.RetiredAt = &t
		}
		if !k.ExpiresAt.IsZero() {
			t := k.ExpiresAt.UTC()
			d.ExpiresAt = &t
		}
		out = append(out, d)
	}
	return map[string][]keyDoc{"keys": out}
}

// listKeys answers GET /admin/keys: every stored key with its state.
func (h *Handler) listKeys(w http.ResponseWriter, r *http.Request) {
	infos, err := h.cfg.Keys.List(r.Context())
	if err != nil {
		h.serverError(w, r, "list keys", err)
		return
	}
	writeJSON(w, http.StatusOK, keyDocs(infos))
}

// rotateRequest is the optional body of POST /admin/keys/rotate.
type rotateRequest struct {
	// Algorithms to rotate; empty means every configured one.
	Algorithms []string `json:"algorithms"`
}

// rotateKeys answers POST /admin/keys/rotate with the new keys.
func (h *Handler) rotateKeys(w http.ResponseWriter, r *http.Request) {
	var req rotateRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid_request", "The body must be {\"algorithms\": [...]} or empty.")
		return
	}
	configured := h.cfg.Keys.Algorithms()
	for _, a := range req.Algorithms {
		if !slices.Contains(configured, a) {
			writeError(w, http.StatusBadRequest, "invalid_request",
				fmt.Sprintf("Algorithm %q is not configured (keys.algorithms: %s).", a, strings.Join(configured, ", ")))
			return
		}
	}
	var infos []keys.KeyInfo
	err := h.recorded(r, func(ctx context.Context) ([]storage.Event, error) {
		var err error
		infos, err = h.cfg.Keys.Rotate(ctx, req.Algorithms...)
		evs := make([]storage.Event, 0, len(infos))
		for _, k := range infos {
			evs = append(evs, storage.Event{Type: storage.EventKeyRotated, Details: map[string]any{"kid": k.KID, "alg": k.Algorithm}})
		}
		return evs, err
	})
	// In a transaction the manager does not reload (keys.Manager.Rotate):
	// it learns now what was kept.
	if lerr := h.cfg.Keys.Load(r.Context()); lerr != nil {
		err = errors.Join(err, lerr)
	}
	if err != nil {
		h.serverError(w, r, "rotate keys", err)
		return
	}
	for _, k := range infos {
		h.log.InfoContext(r.Context(), "admin: signing key created", "kid", k.KID, "alg", k.Algorithm, "activates_at", k.ActivatesAt, "operator", Operator(r))
	}
	writeJSON(w, http.StatusOK, keyDocs(infos))
}
