package provider

// This is the only file that imports go-jose v3: fosite v0.49.0's token/jwt
// package is built on it, so the key handed to its parser must be a v3 type.
// TODO(fosite#797): delete the v3 bridge when fosite moves to go-jose v4.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	josev3 "github.com/go-jose/go-jose/v3"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/ory/fosite/token/jwt"

	"github.com/wxoidc/wxoidc/keys"
)

// KeySource is what the provider needs of the signing-key manager.
type KeySource interface {
	// SigningKey returns the key that signs now for alg.
	SigningKey(alg string) (*keys.SigningKey, error)
	// VerificationKey returns the published public key with kid.
	VerificationKey(ctx context.Context, kid string) (*jose.JSONWebKey, error)
	// JWKS returns the published public keys as prepared JSON.
	JWKS() []byte
	// Ready reports whether keys are loaded.
	Ready() bool
	// Algorithms lists the algorithms keys are kept for, RS256 first.
	Algorithms() []string
}

var _ KeySource = (*keys.Manager)(nil)

// signer implements fosite's jwt.Signer over every published key: it signs
// with the current key of one algorithm and verifies with whichever
// published key a token's kid names, so tokens signed before a rotation
// keep verifying after it (fosite's DefaultSigner knows a single key).
type signer struct {
	keys KeySource
	// alg is the algorithm to sign with; empty means the one the header's
	// "alg" entry names (ID tokens, per client), or RS256.
	alg string
	// cache holds go-jose signers by kid and typ; a go-jose Signer is safe
	// for concurrent use. Keys are few and retire, so it stays small.
	cache sync.Map
}

var _ jwt.Signer = (*signer)(nil)

// parseAlgs is the allow-list of JWS algorithms the provider parses: the
// ones it signs with (keys.SupportedAlgorithms).
var parseAlgs = func() []jose.SignatureAlgorithm {
	var out []jose.SignatureAlgorithm
	for _, a := range keys.SupportedAlgorithms() {
		out = append(out, jose.SignatureAlgorithm(a))
	}
	return out
}()

// Generate implements jwt.Signer.
func (s *signer) Generate(ctx context.Context, claims jwt.MapClaims, header jwt.Mapper) (string, string, error) {
	alg := s.alg
	if alg == "" {
		alg, _ = header.Get("alg").(string)
	}
	if alg == "" {
		alg = string(jose.RS256)
	}
	key, err := s.keys.SigningKey(alg)
	if err != nil {
		return "", "", fmt.Errorf("signing key for %s: %w", alg, err)
	}
	js, err := s.joseSigner(key, header.ToMap())
	if err != nil {
		return "", "", err
	}
	payload, err := json.Marshal(map[string]any(claims))
	if err != nil {
		return "", "", fmt.Errorf("encode claims: %w", err)
	}
	obj, err := js.Sign(payload)
	if err != nil {
		return "", "", fmt.Errorf("sign: %w", err)
	}
	token, err := obj.CompactSerialize()
	if err != nil {
		return "", "", fmt.Errorf("serialize: %w", err)
	}
	return token, token[strings.LastIndexByte(token, '.')+1:], nil
}

// joseSigner returns a go-jose signer for key with the given extra
// headers. Signers whose only extra header is typ (every token wxoidc
// issues) are built once per key and reused.
func (s *signer) joseSigner(key *keys.SigningKey, headers map[string]any) (jose.Signer, error) {
	typ := "JWT"
	cacheable := true
	for k, v := range headers {
		switch k {
		case "kid", "alg": // the key decides both
		case "typ":
			if t, ok := v.(string); ok {
				typ = t
			} else {
				cacheable = false
			}
		default:
			cacheable = false
		}
	}
	ck := key.KID + "\x00" + typ
	if cacheable {
		if js, ok := s.cache.Load(ck); ok {
			return js.(jose.Signer), nil
		}
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	for k, v := range headers {
		if k != "kid" && k != "alg" && k != "typ" {
			opts.WithHeader(jose.HeaderKey(k), v)
		}
	}
	js, err := key.Signer(opts)
	if err != nil {
		return nil, err
	}
	if cacheable {
		s.cache.Store(ck, js)
	}
	return js, nil
}

// Decode implements jwt.Signer: it verifies the signature with the
// published key the token's kid names and validates exp, iat and nbf.
func (s *signer) Decode(ctx context.Context, token string) (*jwt.Token, error) {
	return jwt.ParseWithClaims(token, jwt.MapClaims{}, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		k, err := s.keys.VerificationKey(ctx, kid)
		if err != nil {
			return nil, err
		}
		if string(t.Method) != k.Algorithm {
			return nil, fmt.Errorf("token alg %q does not match key %s", t.Method, kid)
		}
		return &josev3.JSONWebKey{Key: k.Key, KeyID: k.KeyID, Algorithm: k.Algorithm, Use: k.Use}, nil
	})
}

// Validate implements jwt.Signer.
func (s *signer) Validate(ctx context.Context, token string) (string, error) {
	if _, err := s.Decode(ctx, token); err != nil {
		return "", err
	}
	return s.GetSignature(ctx, token)
}

// Hash implements jwt.Signer.
func (s *signer) Hash(ctx context.Context, in []byte) ([]byte, error) {
	return (&jwt.DefaultSigner{}).Hash(ctx, in)
}

// GetSignature implements jwt.Signer.
func (s *signer) GetSignature(ctx context.Context, token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("header, body and signature must all be set")
	}
	return parts[2], nil
}

// GetSigningMethodLength implements jwt.Signer.
func (s *signer) GetSigningMethodLength(ctx context.Context) int {
	return jwt.SHA256HashSize
}

// verifyIDTokenHint verifies an ID token this provider issued, accepting
// an expired one (OpenID Connect RP-Initiated Logout §2 allows that), and
// returns its claims.
func (s *signer) verifyIDTokenHint(ctx context.Context, token string) (map[string]any, error) {
	obj, err := jose.ParseSignedCompact(token, parseAlgs)
	if err != nil {
		return nil, err
	}
	if len(obj.Signatures) != 1 {
		return nil, errors.New("id_token_hint must have one signature")
	}
	h := obj.Signatures[0].Header
	k, err := s.keys.VerificationKey(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if h.Algorithm != k.Algorithm {
		return nil, fmt.Errorf("id_token_hint alg %q does not match key %s", h.Algorithm, h.KeyID)
	}
	payload, err := obj.Verify(k)
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, err
	}
	return claims, nil
}
