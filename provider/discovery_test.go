package provider_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "update golden files")

// TestDiscovery_Golden: the document of a provider with every optional
// endpoint on (Dynamic Client Registration too; TestRegistration_Off
// checks that registration_endpoint goes with it).
func TestDiscovery_Golden(t *testing.T) {
	e := newEnv(t, withDCR)
	resp, err := e.client.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc == "" {
		t.Error("discovery has no Cache-Control")
	}
	raw, _ := io.ReadAll(resp.Body)
	// The issuer is the test server's random address: normalise it.
	got := bytes.ReplaceAll(raw, []byte(e.issuer), []byte("https://issuer.example"))
	golden := filepath.Join("testdata", "discovery.golden.json")
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./provider -run Discovery -update)", err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(want, &w)
	gb, _ := json.MarshalIndent(g, "", "  ")
	wb, _ := json.MarshalIndent(w, "", "  ")
	if !bytes.Equal(gb, wb) {
		t.Fatalf("discovery document differs from %s:\ngot:\n%s\nwant:\n%s", golden, gb, wb)
	}
}
