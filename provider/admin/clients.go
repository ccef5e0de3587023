package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/storage"
)

// maxBody bounds a request body.
const maxBody = 64 << 10

// clientList is the answer of GET /admin/clients.
type clientList struct {
	Clients []provider.ClientMetadata `json:"clients"`
}

// listClients answers GET /admin/clients: every client, by id, without
// secrets.
func (h *Handler) listClients(w http.ResponseWriter, r *http.Request) {
	cs, err := h.cfg.Clients.ListClients(r.Context())
	if err != nil {
		h.serverError(w, r, "list clients", err)
		return
	}
	out := clientList{Clients: make([]provider.ClientMetadata, 0, len(cs))}
	for _, c := range cs {
		out.Clients = append(out.Clients, provider.Metadata(c))
	}
	writeJSON(w, http.StatusOK, out)
}

// getClient answers GET /admin/clients/{id}, without the secret.
func (h *Handler) getClient(w http.ResponseWriter, r *http.Request) {
	id, ok := clientID(w, r)
	if !ok {
		return
	}
	c, err := h.cfg.Clients.Client(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "No client with this client_id.")
		return
	}
	if err != nil {
		h.serverError(w, r, "get client", err)
		return
	}
	writeJSON(w, http.StatusOK, provider.Metadata(c))
}

// createClient answers POST /admin/clients (RFC 7591 §3.1): 201 with the
// client document and, for a confidential client, its new secret, shown
// this once.
func (h *Handler) createClient(w http.ResponseWriter, r *http.Request) {
	m, ok := h.decodeMetadata(w, r)
	if !ok {
		return
	}
	if m.ClientID == "" {
		m.ClientID = newClientID()
	}
	now := h.cfg.Now().UTC()
	c, err := m.Check(h.cfg.Dev, now, h.cfg.Keys.Algorithms(), h.cfg.WeChatApps)
	if err != nil {
		writeClientError(w, err)
		return
	}
	out := provider.Metadata(c)
	if !c.IsPublic() {
		plain := provider.NewClientSecret()
		c.SecretHash = provider.HashClientSecret(h.cfg.Secret, plain)
		withSecret(&out, plain)
	}
	err = h.recorded(r, func(ctx context.Context) ([]storage.Event, error) {
		return []storage.Event{{Type: storage.EventClientCreated, ClientID: c.ID}}, h.cfg.Clients.CreateClient(ctx, c)
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		writeJSON(w, http.StatusConflict, errorBody{Error: "invalid_client_metadata", Field: "client_id",
			Description: fmt.Sprintf("client_id %q is already registered.", c.ID)})
		return
	}
	if err != nil {
		h.serverError(w, r, "create client", err)
		return
	}
	h.log.InfoContext(r.Context(), "admin: client created", "client_id", c.ID, "public", c.IsPublic(), "operator", Operator(r))
	w.Header().Set("Location", pathClients+"/"+url.PathEscape(c.ID))
	writeJSON(w, http.StatusCreated, out)
}

// replaceClient answers PUT /admin/clients/{id} (RFC 7592 §2.2): the body
// replaces the client's metadata; omitted fields take their defaults. The
// secret stays, unless the client becomes public (it is dropped) or
// confidential (a new one is generated and shown once).
func (h *Handler) replaceClient(w http.ResponseWriter, r *http.Request) {
	id, ok := clientID(w, r)
	if !ok {
		return
	}
	m, ok := h.decodeMetadata(w, r)
	if !ok {
		return
	}
	if m.ClientID != "" && m.ClientID != id {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_client_metadata", Field: "client_id",
			Description: "client_id in the body differs from the one in the path; client ids cannot change."})
		return
	}
	m.ClientID = id
	fresh := provider.NewClientSecret() // used only if the updater needs one
	var updated storage.Client
	var issued bool
	err := h.recorded(r, func(ctx context.Context) ([]storage.Event, error) {
		err := h.cfg.Clients.UpdateClient(ctx, id, func(old storage.Client) (storage.Client, error) {
			n, err := m.Check(h.cfg.Dev, old.CreatedAt, h.cfg.Keys.Algorithms(), h.cfg.WeChatApps)
			if err != nil {
				return storage.Client{}, err
			}
			n.UpdatedAt = h.cfg.Now().UTC()
			n.SecretHash, issued = old.SecretHash, false
			switch {
			case n.IsPublic():
				n.SecretHash = nil
			case len(n.SecretHash) == 0:
				n.SecretHash, issued = provider.HashClientSecret(h.cfg.Secret, fresh), true
			}
			updated = n
			return n, nil
		})
		return []storage.Event{{Type: storage.EventClientUpdated, ClientID: id, Details: map[string]any{"secret_issued": issued}}}, err
	})
	if !h.updateFailed(w, r, err) {
		out := provider.Metadata(updated)
		if issued {
			withSecret(&out, fresh)
		}
		h.log.InfoContext(r.Context(), "admin: client updated", "client_id", id, "secret_issued", issued, "operator", Operator(r))
		writeJSON(w, http.StatusOK, out)
	}
}

// rotateSecret answers POST /admin/clients/{id}/secret: a new secret for a
// confidential client, shown this once; the old one stops working.
func (h *Handler) rotateSecret(w http.ResponseWriter, r *http.Request) {
	id, ok := clientID(w, r)
	if !ok {
		return
	}
	plain := provider.NewClientSecret()
	var updated storage.Client
	err := h.recorded(r, func(ctx context.Context) ([]storage.Event, error) {
		return []storage.Event{{Type: storage.EventClientSecretRotated, ClientID: id}}, h.cfg.Clients.UpdateClient(ctx, id, func(old storage.Client) (storage.Client, error) {
			if old.IsPublic() {
				return storage.Client{}, &provider.ClientError{Code: "invalid_client_metadata", Description: "a public client (token_endpoint_auth_method none) has no secret", Field: "token_endpoint_auth_method"}
			}
			n := old.Clone()
			n.SecretHash = provider.HashClientSecret(h.cfg.Secret, plain)
			n.UpdatedAt = h.cfg.Now().UTC()
			updated = n
			return n, nil
		})
	})
	if !h.updateFailed(w, r, err) {
		out := provider.Metadata(updated)
		withSecret(&out, plain)
		h.log.InfoContext(r.Context(), "admin: client secret rotated", "client_id", id, "operator", Operator(r))
		writeJSON(w, http.StatusOK, out)
	}
}

// deleteClient answers DELETE /admin/clients/{id} with 204.
func (h *Handler) deleteClient(w http.ResponseWriter, r *http.Request) {
	id, ok := clientID(w, r)
	if !ok {
		return
	}
	err := h.recorded(r, func(ctx context.Context) ([]storage.Event, error) {
		return []storage.Event{{Type: storage.EventClientDeleted, ClientID: id}}, h.cfg.Clients.DeleteClient(ctx, id)
	})
	if errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", "No client with this client_id.")
		return
	}
	if err != nil {
		h.serverError(w, r, "delete client", err)
		return
	}
	h.log.InfoContext(r.Context(), "admin: client deleted", "client_id", id, "operator", Operator(r))
	w.WriteHeader(http.StatusNoContent)
}

// updateFailed writes the answer for a failed UpdateClient and reports
// whether it did.
func (h *Handler) updateFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	var ce *provider.ClientError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ce):
		writeClientError(w, ce)
	case errors.Is(err, storage.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "No client with this client_id.")
	default:
		h.serverError(w, r, "update client", err)
	}
	return true
}

// decodeMetadata reads a client document. Unknown fields are refused (a
// misspelt redirect_uris must not silently register a client without
// one), and so is client_secret: secrets are generated by the server.
func (h *Handler) decodeMetadata(w http.ResponseWriter, r *http.Request) (provider.ClientMetadata, bool) {
	var m provider.ClientMetadata
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		var te *json.UnmarshalTypeError
		body := errorBody{Error: "invalid_client_metadata", Description: "The body is not a client metadata document: " + provider.JSONProblem(err)}
		if errors.As(err, &te) {
			body.Field = te.Field
		}
		writeJSON(w, http.StatusBadRequest, body)
		return m, false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "The body holds more than one JSON document.")
		return m, false
	}
	if m.ClientSecret != "" {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid_client_metadata", Field: "client_secret",
			Description: "client_secret is generated by the server; leave it out (POST /admin/clients/{id}/secret rotates it)."})
		return m, false
	}
	m.ClientIDIssuedAt, m.ClientSecretExpiresAt = 0, nil // read-only fields
	return m, true
}

func writeClientError(w http.ResponseWriter, err error) {
	var ce *provider.ClientError
	if errors.As(err, &ce) {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: ce.Code, Description: ce.Description, Field: ce.Field})
		return
	}
	writeError(w, http.StatusBadRequest, "invalid_client_metadata", err.Error())
}

func withSecret(m *provider.ClientMetadata, plain string) {
	m.ClientSecret = plain
	never := int64(0) // RFC 7591 §3.2.1: 0 means it does not expire
	m.ClientSecretExpiresAt = &never
}

// clientID is the unescaped {id} of the path.
func clientID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id, err := url.PathUnescape(mux.Vars(r)["id"])
	if err != nil || id == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "The client id in the path is not valid.")
		return "", false
	}
	return id, true
}

// newClientID returns a random client id.
func newClientID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
