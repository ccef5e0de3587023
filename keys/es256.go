package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// es256Signer signs ES256 JWSs with deterministic ECDSA (RFC 6979): the
// nonce is derived with HMAC-SHA-256 from the private key and the digest,
// instead of go-jose's ecdsa.Sign(rand.Reader, …), whose hedged nonce
// mixes in fresh randomness through an HMAC-SHA-512 DRBG. The signatures
// verify the same way (any ES256 verifier; RFC 6979 signatures are
// ordinary ECDSA signatures).
//
// Why deterministic: a grant signs two tokens, and the hedged nonce's
// DRBG was about 186,000 of a grant's 775,000 signing instructions, and
// a getrandom call per signature. RFC 6979 is the standard way to make
// ECDSA independent of the random number generator: a weak or repeated
// nonce (a broken RNG, a cloned VM's state) reveals the private key, and
// RFC 6979 rules that out. What hedged signing adds on top is resistance
// to fault and side-channel attacks that need the same message signed
// twice with the same nonce (a glitch injected into one of two identical
// signings): they need physical access to, or a co-tenant's control over,
// the signing machine, and the messages wxoidc signs are never repeated
// (every token has its own jti, iat and, for ID tokens, the client's
// nonce). We take RFC 6979; docs/security.md says so too.
type es256Signer struct {
	key *ecdsa.PrivateKey
	pub *jose.JSONWebKey
}

var _ jose.OpaqueSigner = (*es256Signer)(nil)

func newES256Signer(k *SigningKey, key *ecdsa.PrivateKey) *es256Signer {
	return &es256Signer{key: key, pub: &jose.JSONWebKey{Key: &key.PublicKey, KeyID: k.KID, Algorithm: k.Algorithm, Use: "sig"}}
}

// Public implements jose.OpaqueSigner.
func (s *es256Signer) Public() *jose.JSONWebKey { return s.pub }

// Algs implements jose.OpaqueSigner.
func (s *es256Signer) Algs() []jose.SignatureAlgorithm { return []jose.SignatureAlgorithm{jose.ES256} }

// SignPayload implements jose.OpaqueSigner: the JWS signature of payload,
// r and s as 32 big-endian bytes each (RFC 7518 §3.4).
func (s *es256Signer) SignPayload(payload []byte, alg jose.SignatureAlgorithm) ([]byte, error) {
	if alg != jose.ES256 {
		return nil, fmt.Errorf("keys: ES256 key cannot sign %s", alg)
	}
	digest := sha256.Sum256(payload)
	der, err := s.key.Sign(nil, digest[:], crypto.SHA256) // nil rand: RFC 6979
	if err != nil {
		return nil, err
	}
	return es256FromDER(der)
}

// es256FromDER converts an ASN.1 ECDSA-Sig-Value to the 64 bytes r||s.
func es256FromDER(der []byte) ([]byte, error) {
	var r, s []byte
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() ||
		len(r) > 32 || len(s) > 32 {
		return nil, errors.New("keys: malformed ECDSA signature")
	}
	out := make([]byte, 64)
	copy(out[32-len(r):32], r)
	copy(out[64-len(s):], s)
	return out, nil
}
