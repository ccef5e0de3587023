package provider_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// verifyAccessToken accepts RFC 9068 access tokens only.
func verifyAccessToken(ctx context.Context, verifier *oidc.IDTokenVerifier, bearer string) (*oidc.IDToken, error) {
	jws, err := jose.ParseSigned(bearer, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil {
		return nil, err
	}
	typ, _ := jws.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, errors.New("not an access token: typ is not at+jwt")
	}
	return verifier.Verify(ctx, bearer) // signature (by kid, from the JWKS), iss, aud, exp
}

// funcSource returns the source of func name in text (from "func name("
// to the first "}" at the start of a line).
func funcSource(t *testing.T, text, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?ms)^func ` + name + `\(.*?^}`).FindString(text)
	if m == "" {
		t.Fatalf("no func %s", name)
	}
	return m
}

// TestReadmeRecipe runs the README's backend recipe — the same function,
// checked against README.md byte for byte — on what a Mini Program
// sign-in returns: the access token is accepted, the ID token (same keys,
// same audience) refused, and an access token for another audience too.
func TestReadmeRecipe(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.ReadFile("recipe_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := funcSource(t, string(readme), "verifyAccessToken"), funcSource(t, string(self), "verifyAccessToken"); a != b {
		t.Fatalf("README's verifyAccessToken differs from the one tested:\n%s\n---\n%s", a, b)
	}
	if !strings.Contains(string(readme), `provider.Verifier(&oidc.Config{ClientID: "demo-miniprogram", SupportedSigningAlgs: []string{"ES256", "RS256", "EdDSA"}})`) {
		t.Fatal("README's verifier set-up changed; update this test")
	}

	e := newEnv(t)
	m := mp{e: e}
	body, _ := m.login(miniClient, miniApp, "olivia", "openid")
	verifier := e.provider.Verifier(&oidc.Config{ClientID: miniClient, SupportedSigningAlgs: []string{"ES256", "RS256", "EdDSA"}})
	if _, err := verifier.Verify(e.ctx, body["id_token"].(string)); err != nil {
		t.Fatalf("the ID token must pass a plain go-oidc verification for this test to mean anything: %v", err)
	}
	tok, err := verifyAccessToken(e.ctx, verifier, body["access_token"].(string))
	if err != nil || tok.Subject == "" {
		t.Fatalf("the access token was refused: %v", err)
	}
	if _, err := verifyAccessToken(e.ctx, verifier, body["id_token"].(string)); err == nil {
		t.Fatal("the recipe accepted an ID token as an access token")
	}
	other := e.provider.Verifier(&oidc.Config{ClientID: "another-api", SupportedSigningAlgs: []string{"ES256", "RS256", "EdDSA"}})
	if _, err := verifyAccessToken(e.ctx, other, body["access_token"].(string)); err == nil {
		t.Fatal("the recipe accepted an access token for another audience")
	}
}
