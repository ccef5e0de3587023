package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// checkYAML walks the YAML document b against the type of c and reports
// every unknown key and every value of the wrong type by its key path
// (storage.dsn, wechat.apps[0].kind), line and expected type, with a
// suggestion for a misspelt key. yaml.v3's own messages name Go types
// ("field dns_typo not found in type struct {…}") instead.
func checkYAML(b []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err // syntax: yaml.v3 names the line
	}
	var errs []error
	walkYAML(&doc, reflect.TypeOf(c).Elem(), "", &errs)
	return errors.Join(errs...)
}

func walkYAML(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			walkYAML(c, t, path, errs)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	name := path
	if name == "" {
		name = "the file"
	}
	bad := func(format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("%s (line %d): %s", name, n.Line, fmt.Sprintf(format, args...)))
	}
	if n.Tag == "!!null" {
		return // an empty value keeps the default
	}
	if t.Kind() == reflect.Struct && t != reflect.TypeOf(time.Time{}) && !implementsUnmarshaler(t) {
		if n.Kind != yaml.MappingNode {
			bad("want a mapping of keys (%s), got %s", strings.Join(keysOf(t), ", "), describeNode(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fieldByTag(t, k.Value)
			key := join(path, k.Value)
			if !ok {
				msg := fmt.Sprintf("%s (line %d): unknown key", key, k.Line)
				if s := closest(k.Value, keysOf(t)); s != "" {
					msg += fmt.Sprintf("; did you mean %s?", join(path, s))
				} else {
					msg += fmt.Sprintf(" (%s has %s)", nameOr(path, "the top level"), strings.Join(keysOf(t), ", "))
				}
				*errs = append(*errs, errors.New(msg))
				continue
			}
			walkYAML(v, f.Type, key, errs)
		}
		return
	}
	if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
		if n.Kind != yaml.SequenceNode {
			bad("want a list, got %s", describeNode(n))
			return
		}
		for i, c := range n.Content {
			walkYAML(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
		return
	}
	v := reflect.New(t)
	if err := n.Decode(v.Interface()); err != nil {
		bad("want %s, got %s", describeType(t), describeNode(n))
	}
}

func implementsUnmarshaler(t reflect.Type) bool {
	u := reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	return t.Implements(u) || reflect.PointerTo(t).Implements(u)
}

// fieldByTag finds the field of struct t whose yaml key is key.
func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag == key && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// keysOf lists the yaml keys of struct t.
func keysOf(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" && f.IsExported() {
			out = append(out, tag)
		}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func nameOr(path, def string) string {
	if path == "" {
		return def
	}
	return path
}

// describeType says in words what a value of t looks like.
func describeType(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "a duration such as 90s, 15m or 720h"
	case t.Kind() == reflect.Pointer:
		return describeType(t.Elem())
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "a list of strings, such as [a, b]"
	case t.Kind() == reflect.Slice:
		return "a list"
	case t.Kind() == reflect.Map || t.Kind() == reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

// describeNode says in words what the YAML node n is, quoting a short
// scalar.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return fmt.Sprintf("%q", v)
}

// closest returns the candidate within edit distance 2 of s (the nearest),
// or "".
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
