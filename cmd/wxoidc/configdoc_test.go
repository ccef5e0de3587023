package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestConfigDocumented checks that docs/config.md names every config key
// and, for keys the environment can set, its WXOIDC_ name.
func TestConfigDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	var walk func(typ reflect.Type, key, env string, fromEnv bool)
	walk = func(typ reflect.Type, key, env string, fromEnv bool) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" || !f.IsExported() {
				continue
			}
			k, e := tag, "WXOIDC_"+strings.ToUpper(tag)
			if key != "" {
				k, e = key+"."+tag, env+"_"+strings.ToUpper(tag)
			}
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, k, e, fromEnv)
				continue
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), k+"[]", "", false)
			}
			if !strings.Contains(doc, "`"+k+"`") {
				t.Errorf("docs/config.md does not document %s", k)
			}
			if fromEnv && f.Type.Kind() != reflect.Slice || fromEnv && f.Type.Elem().Kind() == reflect.String {
				if !strings.Contains(doc, "`"+e+"`") {
					t.Errorf("docs/config.md does not name %s's environment variable %s", k, e)
				}
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "", "", true)
}
