package keys_test

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wxoidc/wxoidc/keys"
)

func ExampleManager() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m, err := keys.New(newMemStore(), keys.Config{
		Secret:     []byte("an example system secret, 32+ bytes long"),
		Algorithms: []string{keys.ES256},
		Now:        func() time.Time { return now },
	})
	if err != nil {
		panic(err)
	}
	// A fresh deployment: Load creates one key per algorithm, active at once.
	if err := m.Load(ctx); err != nil {
		panic(err)
	}
	k, err := m.SigningKey(keys.ES256)
	if err != nil {
		panic(err)
	}
	signer, err := k.Signer((&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		panic(err)
	}
	jws, err := signer.Sign([]byte(`{"iss":"https://id.example.com","sub":"alice"}`))
	if err != nil {
		panic(err)
	}
	token, _ := jws.CompactSerialize()

	// A relying party verifies with the published JWKS, allowing only the
	// algorithm it expects.
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(m.JWKS(), &set); err != nil {
		panic(err)
	}
	parsed, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		panic(err)
	}
	kid := parsed.Signatures[0].Header.KeyID
	payload, err := parsed.Verify(set.Key(kid)[0])
	if err != nil {
		panic(err)
	}
	fmt.Println("kid is the signing key's:", kid == k.KID)
	fmt.Println("published keys:", len(set.Keys))
	fmt.Println("payload:", string(payload))
	// Output:
	// kid is the signing key's: true
	// published keys: 2
	// payload: {"iss":"https://id.example.com","sub":"alice"}
}

func ExampleManager_Rotate() {
	ctx := context.Background()
	c := newClock()
	m, err := keys.New(newMemStore(), keys.Config{
		Secret:       []byte("an example system secret, 32+ bytes long"),
		Algorithms:   []string{keys.EdDSA},
		PublishDelay: 10 * time.Minute,
		Retention:    24 * time.Hour,
		Now:          c.Now,
	})
	if err != nil {
		panic(err)
	}
	if err := m.Load(ctx); err != nil {
		panic(err)
	}
	old, _ := m.SigningKey(keys.EdDSA)
	c.Add(time.Hour)
	rotated, err := m.Rotate(ctx, keys.EdDSA)
	if err != nil {
		panic(err)
	}
	show := func(when string) {
		infos, _ := m.List(ctx)
		for _, in := range infos {
			if in.Algorithm != keys.EdDSA {
				continue
			}
			name := "old"
			if in.KID == rotated[0].KID {
				name = "new"
			}
			fmt.Printf("%s: %s key %s\n", when, name, in.State)
		}
	}
	show("at rotation")
	c.Add(10 * time.Minute)
	show("after the publish delay")
	c.Add(24 * time.Hour)
	show("after the retention")
	cur, _ := m.SigningKey(keys.EdDSA)
	fmt.Println("signing key changed:", cur.KID != old.KID)
	// Output:
	// at rotation: old key active
	// at rotation: new key pending
	// after the publish delay: old key retired
	// after the publish delay: new key active
	// after the retention: old key expired
	// after the retention: new key active
	// signing key changed: true
}

func ExampleSealer() {
	secret := []byte("an example system secret, 32+ bytes long")
	s, err := keys.NewSealer(secret, "wechat-session-keys")
	if err != nil {
		panic(err)
	}
	sealed, err := s.Seal([]byte("session key"), []byte("user-42"))
	if err != nil {
		panic(err)
	}
	plain, err := s.Open(sealed, []byte("user-42"))
	fmt.Println(string(plain), err)
	_, err = s.Open(sealed, []byte("user-43"))
	fmt.Println(err)
	// Output:
	// session key <nil>
	// keys: cannot open sealed value
}
