package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wxoidc/wxoidc/storage"
)

// The signature algorithms the manager can keep keys for.
const (
	RS256 = string(jose.RS256) // RSA 2048, RSASSA-PKCS1-v1_5 with SHA-256; always present
	ES256 = string(jose.ES256) // ECDSA on P-256 with SHA-256
	EdDSA = string(jose.EdDSA) // Ed25519
)

// rsaBits is the RSA modulus size of new RS256 keys.
const rsaBits = 2048

// SupportedAlgorithms returns the JWS algorithms wxoidc signs with, RS256
// first. It is the one list: configuration checks, client registration,
// discovery and the provider's JWS parsing all take it from here.
func SupportedAlgorithms() []string { return []string{RS256, ES256, EdDSA} }

// Supported reports whether alg is one of SupportedAlgorithms.
func Supported(alg string) bool {
	switch alg {
	case RS256, ES256, EdDSA:
		return true
	}
	return false
}

// KeptAlgorithms returns the algorithms a Manager configured with algs
// (Config.Algorithms) keeps keys for: RS256 always, then algs in order,
// without duplicates; empty algs means every supported algorithm.
func KeptAlgorithms(algs []string) []string {
	if len(algs) == 0 {
		return SupportedAlgorithms()
	}
	out := []string{RS256}
	for _, a := range algs {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// OneOf writes algs for a message: "RS256, ES256 or EdDSA".
func OneOf(algs []string) string {
	switch len(algs) {
	case 0:
		return "none"
	case 1:
		return algs[0]
	}
	return strings.Join(algs[:len(algs)-1], ", ") + " or " + algs[len(algs)-1]
}

// SigningKey is a private key that signs now, kept in memory. It is shared
// and immutable: callers must not modify it.
type SigningKey struct {
	// KID is the key's identifier, written into every JWS header it signs.
	KID string
	// Algorithm is the JWS alg: RS256, ES256 or EdDSA.
	Algorithm string
	// Key is *rsa.PrivateKey (RS256), *ecdsa.PrivateKey on P-256 (ES256) or
	// ed25519.PrivateKey (EdDSA).
	Key crypto.Signer
}

// JWK returns the private key as a go-jose v4 JSON Web Key with kid, alg and
// use=sig. The key it holds is the in-memory key itself, not a copy.
func (k *SigningKey) JWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.Key, KeyID: k.KID, Algorithm: k.Algorithm, Use: "sig"}
}

// Signer returns a go-jose v4 signer for the key that always writes the
// key's kid into the protected header. opts may be nil; use it to set typ
// ("JWT", "at+jwt") and other headers. ES256 keys sign deterministically
// (RFC 6979; see es256Signer for why).
func (k *SigningKey) Signer(opts *jose.SignerOptions) (jose.Signer, error) {
	var key any = k.Key
	if ec, ok := k.Key.(*ecdsa.PrivateKey); ok && k.Algorithm == ES256 {
		key = newES256Signer(k, ec)
	}
	s, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(k.Algorithm),
		Key:       jose.JSONWebKey{Key: key, KeyID: k.KID, Algorithm: k.Algorithm},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for %s key %s: %w", k.Algorithm, k.KID, err)
	}
	return s, nil
}

// generateKey creates a new private key for alg.
func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case RS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("keys: unsupported algorithm %q", alg)
}

// checkKeyType reports whether key is the right type for alg.
func checkKeyType(alg string, key any) error {
	ok := false
	switch alg {
	case RS256:
		k, isRSA := key.(*rsa.PrivateKey)
		ok = isRSA && k.N.BitLen() >= rsaBits
	case ES256:
		k, isEC := key.(*ecdsa.PrivateKey)
		ok = isEC && k.Curve == elliptic.P256()
	case EdDSA:
		_, ok = key.(ed25519.PrivateKey)
	}
	if !ok {
		return fmt.Errorf("keys: a %T is not a valid %s key", key, alg)
	}
	return nil
}

// thumbprint returns the RFC 7638 SHA-256 thumbprint of jwk, base64url
// without padding: the kid of every key this package creates.
func thumbprint(jwk *jose.JSONWebKey) (string, error) {
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}

// newRecord generates a key for alg and returns its storage record, the
// private part sealed under sealer with the kid as AAD. It does no I/O, so
// callers generate keys before, never inside, a storage call.
func newRecord(sealer *Sealer, alg string, createdAt, activatesAt time.Time) (storage.SigningKey, *loadedKey, error) {
	priv, err := generateKey(alg)
	if err != nil {
		return storage.SigningKey{}, nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: alg, Use: "sig"}
	kid, err := thumbprint(&pub)
	if err != nil {
		return storage.SigningKey{}, nil, err
	}
	pub.KeyID = kid
	pubJSON, err := json.Marshal(pub)
	if err != nil {
		return storage.SigningKey{}, nil, fmt.Errorf("keys: encode public %s key: %w", alg, err)
	}
	privJSON, err := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: alg, Use: "sig"})
	if err != nil {
		return storage.SigningKey{}, nil, fmt.Errorf("keys: encode private %s key: %w", alg, err)
	}
	sealed, err := sealer.Seal(privJSON, []byte(kid))
	clear(privJSON)
	if err != nil {
		return storage.SigningKey{}, nil, err
	}
	rec := storage.SigningKey{
		KID:         kid,
		Algorithm:   alg,
		Private:     sealed,
		Public:      pubJSON,
		CreatedAt:   createdAt,
		ActivatesAt: activatesAt,
	}
	return rec, &loadedKey{
		sealed: sealed,
		signer: &SigningKey{KID: kid, Algorithm: alg, Key: priv},
		public: pub,
	}, nil
}

// loadedKey is the decrypted, parsed form of a stored key. It is immutable
// and shared between snapshots.
type loadedKey struct {
	sealed []byte          // the record's Private bytes it was opened from
	signer *SigningKey     // never nil
	public jose.JSONWebKey // public part with kid, alg and use=sig
}

// openRecord decrypts and checks a stored key: the private JWK must open
// with the kid as AAD, match the record's alg and kid, and its public part
// must have the kid as thumbprint and equal the stored public JWK.
func openRecord(sealer *Sealer, rec storage.SigningKey) (*loadedKey, error) {
	if !Supported(rec.Algorithm) {
		return nil, fmt.Errorf("keys: key %s: unsupported algorithm %q", rec.KID, rec.Algorithm)
	}
	plain, err := sealer.Open(rec.Private, []byte(rec.KID))
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: open private part (wrong system secret?): %w", rec.KID, err)
	}
	var priv jose.JSONWebKey
	err = priv.UnmarshalJSON(plain)
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: decode private part: %w", rec.KID, err)
	}
	if priv.KeyID != rec.KID || priv.Algorithm != rec.Algorithm {
		return nil, fmt.Errorf("keys: key %s: private part is for kid %q alg %q", rec.KID, priv.KeyID, priv.Algorithm)
	}
	if err := checkKeyType(rec.Algorithm, priv.Key); err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", rec.KID, err)
	}
	signer, ok := priv.Key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("keys: key %s: %T is not a crypto.Signer", rec.KID, priv.Key)
	}
	pub := jose.JSONWebKey{Key: signer.Public(), KeyID: rec.KID, Algorithm: rec.Algorithm, Use: "sig"}
	tp, err := thumbprint(&pub)
	if err != nil {
		return nil, fmt.Errorf("keys: key %s: %w", rec.KID, err)
	}
	if tp != rec.KID {
		return nil, fmt.Errorf("keys: key %s: kid is not the key's thumbprint %s", rec.KID, tp)
	}
	var stored jose.JSONWebKey
	if err := stored.UnmarshalJSON(rec.Public); err != nil {
		return nil, fmt.Errorf("keys: key %s: decode public part: %w", rec.KID, err)
	}
	if !stored.IsPublic() {
		return nil, fmt.Errorf("keys: key %s: stored public part holds a private key", rec.KID)
	}
	if stp, err := thumbprint(&stored); err != nil || stp != rec.KID {
		return nil, fmt.Errorf("keys: key %s: stored public part does not match the private part", rec.KID)
	}
	return &loadedKey{
		sealed: rec.Private,
		signer: &SigningKey{KID: rec.KID, Algorithm: rec.Algorithm, Key: signer},
		public: pub,
	}, nil
}
