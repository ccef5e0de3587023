package provider

import (
	"sort"
	"strconv"
	"strings"
)

// Languages of the pages people see (login steps, logout, console).
const (
	LocaleZH = "zh-CN"
	LocaleEN = "en"
)

// PageLocale chooses a page's language: the first supported tag of
// uiLocales (OpenID Connect Core §3.1.2.1, space-separated; may be
// empty), else of acceptLanguage by quality, else Chinese.
func PageLocale(uiLocales, acceptLanguage string) string {
	for _, tag := range strings.Fields(uiLocales) {
		if l := SupportedLocale(tag); l != "" {
			return l
		}
	}
	type weighted struct {
		tag string
		q   float64
	}
	var tags []weighted
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if tag != "" && q > 0 {
			tags = append(tags, weighted{tag, q})
		}
	}
	sort.SliceStable(tags, func(i, j int) bool { return tags[i].q > tags[j].q })
	for _, t := range tags {
		if l := SupportedLocale(t.tag); l != "" {
			return l
		}
	}
	return LocaleZH
}

// SupportedLocale returns the page language of a language tag (zh…, en…), or
// "" if wxoidc has no pages in it.
func SupportedLocale(tag string) string {
	t := strings.ToLower(tag)
	switch {
	case t == "zh" || strings.HasPrefix(t, "zh-"):
		return LocaleZH
	case t == "en" || strings.HasPrefix(t, "en-"):
		return LocaleEN
	}
	return ""
}
