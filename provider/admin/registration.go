package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// Limits of an initial access token.
const (
	defaultIATLifetime = 24 * time.Hour
	maxIATLifetime     = 365 * 24 * time.Hour
	maxIATUses         = 10000
	maxIATDescription  = 200
)

// iatRequest is the body of POST /admin/initial-access-tokens; every field
// is optional.
type iatRequest struct {
	// Description says who the token is for.
	Description string `json:"description"`
	// Uses is how many clients the token may register; 0 means 1.
	Uses int `json:"uses"`
	// ExpiresIn is the token's lifetime in seconds; 0 means a day.
	ExpiresIn int64 `json:"expires_in"`
}

// iatDoc is an initial access token as the admin API shows it: never the
// token, except once, in Token, when it is created.
type iatDoc struct {
	ID          string     `json:"id"`
	Token       string     `json:"token,omitempty"`
	Description string     `json:"description,omitempty"`
	Uses        int        `json:"uses"`
	UsesLeft    int        `json:"uses_left"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
}

func iatDocOf(t storage.InitialAccessToken) iatDoc {
	d := iatDoc{ID: t.ID, Description: t.Description, Uses: t.Uses, UsesLeft: t.UsesLeft,
		CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC()}
	if !t.LastUsedAt.IsZero() {
		u := t.LastUsedAt.UTC()
		d.LastUsedAt = &u
	}
	return d
}

// createIAT answers POST /admin/initial-access-tokens: 201 with the new
// token, shown this once (storage keeps its keyed hash).
func (h *Handler) createIAT(w http.ResponseWriter, r *http.Request) {
	var q iatRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid_request", "The body is not an initial access token request: "+provider.JSONProblem(err))
		return
	}
	if q.Uses == 0 {
		q.Uses = 1
	}
	lifetime := defaultIATLifetime
	if q.ExpiresIn != 0 && q.ExpiresIn <= int64(maxIATLifetime/time.Second) { // larger ones are refused below, before they overflow
		lifetime = time.Duration(q.ExpiresIn) * time.Second
	}
	switch {
	case q.Uses < 1 || q.Uses > maxIATUses:
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("uses must be from 1 to %d.", maxIATUses))
		return
	case q.ExpiresIn < 0 || q.ExpiresIn > int64(maxIATLifetime/time.Second):
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("expires_in must be from 1 to %d seconds.", int64(maxIATLifetime/time.Second)))
		return
	case len(q.Description) > maxIATDescription || strings.ContainsFunc(q.Description, isControl):
		writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("description must be at most %d characters, without control characters.", maxIATDescription))
		return
	}
	now := h.cfg.Now().UTC()
	token, hash := h.regTokens.New()
	t := storage.InitialAccessToken{ID: newIATID(), Hash: hash, Description: q.Description, Uses: q.Uses, UsesLeft: q.Uses,
		CreatedAt: now, ExpiresAt: now.Add(lifetime)}
	err := h.recorded(r, func(ctx context.Context) ([]storage.Event, error) {
		return []storage.Event{{Type: storage.EventInitialAccessTokenCreated,
			Details: map[string]any{"id": t.ID, "uses": t.Uses, "expires_at": t.ExpiresAt.Format(time.RFC3339)}}}, h.cfg.Registrations.CreateInitialAccessToken(ctx, t)
	})
	if err != nil {
		h.serverError(w, r, "create initial access token", err)
		return
	}
	h.log.InfoContext(r.Context(), "admin: initial access token created", "id", t.ID, "uses", t.Uses, "expires_at", t.ExpiresAt, "operator", Operator(r))
	d := iatDocOf(t)
	d.Token = token
	w.Header().Set("Location", pathIATs+"/"+url.PathEscape(t.ID))
	writeJSON(w, http.StatusCreated, d)
}

// listIATs answers GET /admin/initial-access-tokens: every token not yet
// removed by the janitor (used up and expired ones too), newest first,
// without the tokens themselves.
func (h *Handler) listIATs(w http.ResponseWriter, r *http.Request) {
	ts, err := h.cfg.Registrations.InitialAccessTokens(r.Context())
	if err != nil {
		h.serverError(w, r, "list initial access tokens", err)
		return
	}
	out := make([]iatDoc, 0, len(ts))
	for _, t := range ts {
		out = append(out, iatDocOf(t))
	}
	writeJSON(w, http.StatusOK, map[string][]iatDoc{"initial_access_tokens": out})
}

// revokeIAT answers DELETE /admin/initial-access-tokens/{id} with 204: the
// token registers nothing more; the clients it registered stay.
func (h *Handler) revokeIAT(w http.ResponseWriter, r *http.Request) {
	id, err := url.PathUnescape(mux.Vars(r)["id"])
	if err != nil || id == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "The token id in the path is not valid.")
		return
	}
	err = h.recorded(r, func(ctx context.Context) ([]storage.Event, error) {
		return []storage.Event{{Type: storage.EventInitialAccessTokenRevoked, Details: map[string]any{"id": id}}}, h.cfg.Registrations.DeleteInitialAccessToken(ctx, id)
	})
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "No initial access token with this id.")
		return
	}
	if err != nil {
		h.serverError(w, r, "revoke initial access token", err)
		return
	}
	h.log.InfoContext(r.Context(), "admin: initial access token revoked", "id", id, "operator", Operator(r))
	w.WriteHeader(http.StatusNoContent)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// newIATID returns a random id for an initial access token.
func newIATID() string {
	b := make([]byte, 9)
	rand.Read(b)
	return "iat_" + base64.RawURLEncoding.EncodeToString(b)
}
