package provider

import (
	"bytes"
	"embed"
	"html/template"
	"mime"
	"net/http"
	"strings"

	"github.com/ory/fosite"
)

//go:embed templates/authorize_error.html
var pageFS embed.FS

var authorizeErrorPage = template.Must(template.ParseFS(pageFS, "templates/authorize_error.html"))

// authorizeErrorText is what the error page tells a person, by language
// and error code ("" is the fallback).
var authorizeErrorText = map[string]struct {
	title, advice, forDevelopers string
	messages                     map[string]string
}{
	"zh-CN": {
		title:         "无法继续登录",
		advice:        "请返回刚才的应用重试。如果问题一直出现，请把下面的错误代码告诉该应用的开发者。",
		forDevelopers: "给开发者的信息：",
		messages: map[string]string{
			"invalid_client":          "把您带到这里的应用没有在本登录服务注册，或者它发来的应用编号（client_id）有误。",
			"invalid_request":         "把您带到这里的应用发来的登录请求有误（例如回跳地址未登记），因此无法安全地把您送回该应用。",
			"temporarily_unavailable": "登录服务暂时繁忙，请稍后再试。",
			"server_error":            "登录服务出了问题，请稍后再试。",
			"":                        "这次登录请求无法完成。",
		},
	},
	"en": {
		title:         "Sign-in cannot continue",
		advice:        "Go back to the app and try again. If this keeps happening, tell the app's developer the error code below.",
		forDevelopers: "For the app's developer:",
		messages: map[string]string{
			"invalid_client":          "The app that sent you here is not registered with this sign-in service, or it sent a wrong client_id.",
			"invalid_request":         "The app that sent you here made a sign-in request that is not valid (an unregistered return address, for example), so you cannot be sent back to it safely.",
			"temporarily_unavailable": "The sign-in service is busy. Try again in a moment.",
			"server_error":            "Something went wrong on the sign-in service. Try again later.",
			"":                        "This sign-in request cannot be completed.",
		},
	},
}

// writeAuthorizeErrorPage answers an authorization error that cannot go
// back to the client: a page in the person's language (zh-CN or English,
// from ui_locales, then Accept-Language) that says what went wrong, with
// the error code and description for the developer; JSON instead for a
// client that does not accept HTML.
func (p *Provider) writeAuthorizeErrorPage(w http.ResponseWriter, r *http.Request, rfc *fosite.RFC6749Error) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	if !acceptsHTML(r.Header.Get("Accept")) {
		p.oauth2.WriteAccessError(r.Context(), w, nil, rfc)
		return
	}
	lang := pageLanguage(r.Form.Get("ui_locales"), r.Header.Get("Accept-Language"))
	text := authorizeErrorText[lang]
	msg, ok := text.messages[rfc.ErrorField]
	if !ok {
		msg = text.messages[""]
	}
	var buf bytes.Buffer
	if err := authorizeErrorPage.Execute(&buf, map[string]string{
		"Lang": lang, "Title": text.title, "Message": msg, "Advice": text.advice,
		"ForDevelopers": text.forDevelopers, "Code": rfc.ErrorField, "Description": rfc.GetDescription(),
	}); err != nil {
		p.oauth2.WriteAccessError(r.Context(), w, nil, rfc)
		return
	}
	PageHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(rfc.CodeField)
	w.Write(buf.Bytes())
}

// acceptsHTML reports whether an Accept header asks for HTML before JSON
// (a browser's does; a client's "application/json", or none, does not).
func acceptsHTML(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/html", "application/xhtml+xml":
			return true
		case "application/json":
			return false
		}
	}
	return false
}

// pageLanguage picks zh-CN or en: the first of ui_locales (OpenID Connect
// Core §3.1.2.1) or of Accept-Language that is Chinese or English;
// Chinese when neither says.
func pageLanguage(uiLocales, acceptLanguage string) string {
	tags := strings.Fields(uiLocales)
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		tags = append(tags, tag)
	}
	for _, t := range tags {
		switch t = strings.ToLower(t); {
		case t == "zh" || strings.HasPrefix(t, "zh-"):
			return "zh-CN"
		case t == "en" || strings.HasPrefix(t, "en-"):
			return "en"
		}
	}
	return "zh-CN"
}
