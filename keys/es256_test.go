package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestES256Signer_RFC6979 checks the ES256 signer against RFC 6979's own
// vector (A.2.5, P-256, SHA-256, message "sample"): the signature is the
// deterministic one, r||s in 64 bytes, and verifies.
func TestES256Signer_RFC6979(t *testing.T) {
	d, _ := hex.DecodeString("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	s := newES256Signer(&SigningKey{KID: "k", Algorithm: ES256, Key: priv}, priv)
	sig, err := s.SignPayload([]byte("sample"), jose.ES256)
	if err != nil {
		t.Fatal(err)
	}
	want := "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716" +
		"F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
	if got := hex.EncodeToString(sig); got != hex.EncodeToString(mustHex(t, want)) {
		t.Fatalf("signature\n got %s\nwant %s", got, want)
	}
	digest := sha256.Sum256([]byte("sample"))
	r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(&priv.PublicKey, digest[:], r, ss) {
		t.Fatal("signature does not verify")
	}
	if _, err := s.SignPayload([]byte("sample"), jose.ES384); err == nil {
		t.Fatal("ES384 accepted")
	}
	if s.Public().IsPublic() != true || s.Public().KeyID != "k" {
		t.Fatalf("Public() = %+v", s.Public())
	}
}

// TestES256FromDER pads short integers and refuses malformed input.
func TestES256FromDER(t *testing.T) {
	// SEQUENCE { INTEGER 1, INTEGER 0x00ff (positive, leading zero) }
	got, err := es256FromDER([]byte{0x30, 0x07, 0x02, 0x01, 0x01, 0x02, 0x02, 0x00, 0xff})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 64 || got[31] != 1 || got[63] != 0xff || got[62] != 0 {
		t.Fatalf("got %x", got)
	}
	for _, bad := range [][]byte{
		nil,
		{0x30, 0x03, 0x02, 0x01, 0x01}, // one integer
		{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x80},       // negative s
		{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00}, // trailing byte
	} {
		if _, err := es256FromDER(bad); err == nil {
			t.Errorf("es256FromDER(%x) accepted", bad)
		}
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
