package sqlstore

import (
	"slices"
	"testing"
)

// TestDecodedClients: a row with the columns decoded last gives the same
// client (a copy the caller may change), any changed column decodes again.
func TestDecodedClients(t *testing.T) {
	var dc decodedClients
	row := clientRow{id: "c1", secretHash: []byte("h1"), meta: []byte(`{"name":"one","scopes":["openid"]}`), version: 1, created: 10, updated: 10}
	a, err := dc.client(&row)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "one" || !slices.Equal(a.Scopes, []string{"openid"}) {
		t.Fatalf("decoded %+v", a)
	}
	a.Scopes[0] = "changed by the caller"
	same := row
	same.meta = slices.Clone(row.meta)
	b, err := dc.client(&same)
	if err != nil {
		t.Fatal(err)
	}
	if b.Scopes[0] != "openid" {
		t.Fatalf("a caller's change reached the memo: %v", b.Scopes)
	}
	for name, change := range map[string]func(r *clientRow){
		"meta":    func(r *clientRow) { r.meta = []byte(`{"name":"two"}`) },
		"secret":  func(r *clientRow) { r.secretHash = []byte("h2") },
		"version": func(r *clientRow) { r.version++ },
		"updated": func(r *clientRow) { r.updated++ },
	} {
		r := row
		change(&r)
		c, err := dc.client(&r)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := r.client()
		if c.Name != want.Name || string(c.SecretHash) != string(want.SecretHash) || !c.UpdatedAt.Equal(want.UpdatedAt) {
			t.Errorf("%s changed: got %+v, want %+v", name, c, want)
		}
		if _, err := dc.client(&row); err != nil { // back to the first, for the next case
			t.Fatal(err)
		}
	}
	bad := clientRow{id: "c2", meta: []byte("{")}
	if _, err := dc.client(&bad); err == nil {
		t.Fatal("malformed metadata accepted")
	}
}
