// Command orders-api (examples/go) is an example API server that accepts
// wxoidc access tokens: net/http middleware that verifies RFC 9068 JWT
// access tokens offline against the provider's JWKS with go-oidc's key set,
// and answers RFC 6750 errors.
//
//	WXOIDC_ISSUER=http://127.0.0.1:8080 API_AUDIENCE=orders-api PORT=8001 go run ./examples/go
//	curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8001/api/orders
//
// A token is accepted only when all of these hold: a signature by a key in
// the issuer's JWKS (cached; fetched again when a token names a kid the
// cache lacks), alg ES256, RS256 or EdDSA, the header typ at+jwt (RFC 9068
// §4: an ID token, signed by the same keys, must not pass as an access
// token), iss the issuer, aud including this API, exp in the future, and
// for /api/orders the scope orders:read.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// Algorithms wxoidc signs with.
var algorithms = []string{"ES256", "RS256", "EdDSA"}

// AccessToken is what the middleware puts in the request's context.
type AccessToken struct {
	Subject  string
	ClientID string
	Scopes   []string
}

type ctxKey struct{}

// FromContext returns the verified access token of a request that passed
// RequireScope.
func FromContext(ctx context.Context) (AccessToken, bool) {
	t, ok := ctx.Value(ctxKey{}).(AccessToken)
	return t, ok
}

// Verifier checks wxoidc access tokens for one API (audience).
type Verifier struct {
	oidc     *oidc.IDTokenVerifier
	audience string
}

// NewVerifier verifies tokens of issuer for audience, with the keys of the
// issuer's JWKS (the key set caches them and fetches the JWKS again when a
// token names an unknown kid).
func NewVerifier(issuer, audience string) *Verifier {
	// wxoidc publishes its JWKS at <issuer>/.well-known/jwks.json; discovery
	// (oidc.NewProvider) would find the same URL with one request more.
	keys := oidc.NewRemoteKeySet(context.Background(), issuer+"/.well-known/jwks.json")
	// go-oidc's verifier checks what every JWT of the issuer needs: the
	// signature and alg, iss, aud (ClientID is the audience to require) and
	// exp. It names them ID tokens; typ is checked below.
	v := oidc.NewVerifier(issuer, keys, &oidc.Config{ClientID: audience, SupportedSigningAlgs: algorithms})
	return &Verifier{oidc: v, audience: audience}
}

// Verify returns the access token raw carries, or an error saying why it
// is not one for this API.
func (v *Verifier) Verify(ctx context.Context, raw string) (AccessToken, error) {
	// RFC 9068 §4: the typ header must be at+jwt (application/at+jwt).
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return AccessToken{}, errors.New("malformed token")
	}
	typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string)
	if t := strings.ToLower(typ); t != "at+jwt" && t != "application/at+jwt" {
		return AccessToken{}, fmt.Errorf("not an access token (typ %q)", typ)
	}
	tok, err := v.oidc.Verify(ctx, raw) // signature, iss, aud, exp
	if err != nil {
		return AccessToken{}, err
	}
	var claims struct {
		Scope    string `json:"scope"`
		ClientID string `json:"client_id"`
	}
	if err := tok.Claims(&claims); err != nil {
		return AccessToken{}, err
	}
	return AccessToken{Subject: tok.Subject, ClientID: claims.ClientID, Scopes: strings.Fields(claims.Scope)}, nil
}

// RequireScope is middleware: it lets a request through when it carries a
// valid access token with scope, and otherwise answers per RFC 6750 §3:
// 401 without a token or with an invalid one, 403 without the scope, and
// 400 for a malformed Authorization header.
func (v *Verifier) RequireScope(scope string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Values("Authorization")
		if len(h) == 0 {
			challenge(w, http.StatusUnauthorized, "", "", "")
			return
		}
		scheme, raw, ok := strings.Cut(h[0], " ")
		if len(h) > 1 || !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" || strings.ContainsAny(raw, " ,") {
			challenge(w, http.StatusBadRequest, "invalid_request", "Send one Authorization: Bearer <token> header.", "")
			return
		}
		tok, err := v.Verify(r.Context(), raw)
		if err != nil {
			log.Printf("token refused: %v", err) // the reason, for the operator; never the token
			challenge(w, http.StatusUnauthorized, "invalid_token", "The access token is invalid or expired.", "")
			return
		}
		if !slices.Contains(tok.Scopes, scope) {
			challenge(w, http.StatusForbidden, "insufficient_scope", "The access token lacks the scope "+scope+".", scope)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, tok)))
	})
}

// challenge writes an RFC 6750 §3 error: WWW-Authenticate and a JSON body.
func challenge(w http.ResponseWriter, status int, code, description, scope string) {
	c := `Bearer realm="orders-api"`
	if code != "" {
		c += fmt.Sprintf(`, error=%q, error_description=%q`, code, description)
	}
	if scope != "" {
		c += fmt.Sprintf(`, scope=%q`, scope)
	}
	w.Header().Set("WWW-Authenticate", c)
	body := map[string]string{}
	if code != "" {
		body = map[string]string{"error": code, "error_description": description}
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func main() {
	issuer := strings.TrimSuffix(getenv("WXOIDC_ISSUER", "http://127.0.0.1:8080"), "/")
	v := NewVerifier(issuer, getenv("API_AUDIENCE", "orders-api"))

	mux := http.NewServeMux()
	mux.Handle("GET /api/orders", v.RequireScope("orders:read", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := FromContext(r.Context())
		writeJSON(w, http.StatusOK, map[string]any{"sub": tok.Subject, "client_id": tok.ClientID, "orders": []any{}})
	})))

	addr := net.JoinHostPort(getenv("HOST", "127.0.0.1"), getenv("PORT", "8001"))
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("orders API on http://%s (issuer %s)", addr, issuer)
	log.Fatal(srv.ListenAndServe())
}
