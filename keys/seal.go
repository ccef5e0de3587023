package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// MinSecretLength is the shortest system secret accepted, in bytes.
const MinSecretLength = 32

// sealVersion1 marks AES-256-GCM with a random 96-bit nonce under a key
// derived by HKDF-SHA256 from the system secret and the purpose. The sealed
// form is version (1 byte) || nonce (12 bytes) || ciphertext || tag (16
// bytes); the version byte is authenticated as part of the AAD.
const sealVersion1 = 0x01

// ErrOpen reports that a sealed value could not be opened: it was tampered
// with, bound to other AAD, sealed under another secret or purpose, or is not
// in a format this version knows. The reasons are deliberately not told
// apart.
var ErrOpen = errors.New("keys: cannot open sealed value")

// Sealer encrypts secrets at rest (signing keys here; the provider also uses
// it for WeChat session keys and server tokens) with AES-256-GCM under a key
// derived with HKDF-SHA256 from the system secret and a purpose string, so
// that a ciphertext sealed for one purpose cannot be opened for another. The
// AAD binds a ciphertext to its record (for signing keys, the kid), so a
// ciphertext copied into another row does not open.
//
// The first byte of a sealed value is a format version, so the scheme can
// change without breaking stored data. A Sealer is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD // never nil after NewSealer
}

// NewSealer returns a Sealer for purpose (which must not be empty) keyed by
// the system secret, which must be at least [MinSecretLength] bytes.
func NewSealer(secret []byte, purpose string) (*Sealer, error) {
	if len(secret) < MinSecretLength {
		return nil, fmt.Errorf("keys: secret is %d bytes, want at least %d", len(secret), MinSecretLength)
	}
	if purpose == "" {
		return nil, errors.New("keys: sealer purpose is empty")
	}
	key, err := hkdf.Key(sha256.New, secret, nil, "wxoidc/seal/v1/"+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("keys: derive sealing key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keys: sealing cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: sealing cipher: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext and binds it to aad (which is not stored; Open
// needs the same aad). Each call uses a fresh random nonce, so sealing the
// same plaintext twice gives different results.
func (s *Sealer) Seal(plaintext, aad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+s.aead.Overhead())
	out[0] = sealVersion1
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		return nil, fmt.Errorf("keys: seal nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:1+ns], plaintext, versionedAAD(sealVersion1, aad)), nil
}

// Open decrypts a value made by Seal with the same secret, purpose and aad.
// Any failure returns an error wrapping [ErrOpen].
func (s *Sealer) Open(ciphertext, aad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(ciphertext) < 1+ns+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: too short", ErrOpen)
	}
	if ciphertext[0] != sealVersion1 {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrOpen, ciphertext[0])
	}
	pt, err := s.aead.Open(nil, ciphertext[1:1+ns], ciphertext[1+ns:], versionedAAD(sealVersion1, aad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

func versionedAAD(version byte, aad []byte) []byte {
	b := make([]byte, 0, 1+len(aad))
	b = append(b, version)
	return append(b, aad...)
}

// DeriveKey derives n bytes for purpose from the system secret with
// HKDF-SHA256 (RFC 5869, no salt, info "wxoidc/derive/" + purpose). The
// provider uses it for fosite's HMAC global secret and for the keyed hash of
// client secrets. Different purposes give independent keys, and no purpose
// gives a key that a [Sealer] uses.
//
// The secret should be at least [MinSecretLength] bytes; [Config.Validate]
// checks that for the manager's secret. n must be between 1 and 8160
// (255 × 32, HKDF's limit); DeriveKey panics otherwise, as make does for a
// negative size, because that is a programming error and not a runtime
// condition.
func DeriveKey(secret []byte, purpose string, n int) []byte {
	if n < 1 || n > 255*sha256.Size {
		panic(fmt.Sprintf("keys: DeriveKey length %d out of range [1, %d]", n, 255*sha256.Size))
	}
	k, err := hkdf.Key(sha256.New, secret, nil, "wxoidc/derive/"+purpose, n)
	if err != nil {
		// Unreachable: the only error is for a length already checked above
		// (or FIPS 140-only mode rejecting short secrets).
		panic("keys: DeriveKey: " + err.Error())
	}
	return k
}
