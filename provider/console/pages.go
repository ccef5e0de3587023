package console

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/wxoidc/wxoidc/provider"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

//go:embed static/console.css
var stylesheet string

// funcs are the template functions; the locale is always passed in.
var funcs = template.FuncMap{
	"t":  msg,
	"tf": func(locale, key string, args ...any) string { return fmt.Sprintf(msg(locale, key), args...) },
	"date": func(locale string, t any) string {
		var tm time.Time
		switch v := t.(type) {
		case time.Time:
			tm = v
		case *time.Time:
			if v != nil {
				tm = *v
			}
		case int64: // Unix seconds, as in client_id_issued_at
			if v > 0 {
				tm = time.Unix(v, 0)
			}
		}
		if tm.IsZero() {
			return "—"
		}
		return tm.UTC().Format("2006-01-02 15:04") + " UTC"
	},
	"join": strings.Join,
	// css is the console's stylesheet, inlined: the pages' CSP allows
	// inline styles and no stylesheet from anywhere.
	"css": func() template.CSS { return template.CSS(stylesheet) },
	// tokenAge says how old a WeChat server token is: WeChat's tokens
	// live 7,200 s, so the age is that minus what is left.
	"tokenAge": func(locale string, now time.Time, expires *time.Time) string {
		left := expires.Sub(now)
		if left <= 0 {
			return msg(locale, "overview.tokenExpired")
		}
		age := max(7200*time.Second-left, 0).Round(time.Minute)
		return fmt.Sprintf(msg(locale, "overview.tokenAge"), int(age.Minutes()), int(left.Round(time.Minute).Minutes()))
	},
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			k, _ := kv[i].(string)
			m[k] = kv[i+1]
		}
		return m
	},
	"pathesc": url.PathEscape,
	"has":     has,
	"details": func(d map[string]any) string {
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, d[k]))
		}
		return strings.Join(parts, " ")
	},
}

// pages holds one template set per page: the layout plus the page's own
// file, which defines "title" and "content".
var pages = func() map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/layout.html"))
	names, _ := fs.Glob(templateFS, "templates/*.html")
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFS, n))
	}
	return out
}()

// setSecurityHeaders sets the headers of every provider page
// (provider.PageHeaders), plus what the console's own script and forms
// need: its script from /console/static/, and forms that post to the
// console only.
func (h *Handler) setSecurityHeaders(w http.ResponseWriter) {
	provider.PageHeaders(w.Header(), "script-src 'self'", "form-action 'self'")
}

// render writes page name. data is the page's own; render adds the
// locale (L), the operator (Op), the CSRF token, the current path and the
// navigation.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, op *operator, data map[string]any) {
	t, ok := pages[name]
	if !ok {
		h.log.Error("console: no such page", "page", name)
		status, t = http.StatusInternalServerError, pages["error"]
		data = map[string]any{"Message": "errServer"}
	}
	if data == nil {
		data = map[string]any{}
	}
	locale := h.locale(r)
	data["L"] = locale
	data["Other"] = otherLocale(locale)
	data["CSRF"] = h.csrfToken(h.binding(w, r))
	data["Path"] = Prefix // where the language switch comes back to
	if r.Method == http.MethodGet {
		data["Path"] = r.URL.RequestURI()
	}
	if op != nil {
		data["Op"] = map[string]any{"Name": op.display(), "Role": op.Role, "CanChange": op.canChange(), "BreakGlass": op.Subject == ""}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "page", data); err != nil {
		h.log.Error("console: render page", "page", name, "error", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString("<!doctype html><title>wxoidc</title><p>" + template.HTMLEscapeString(msg(locale, "errServer")))
	}
	h.setSecurityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", locale)
	w.Header().Set("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage shows message key with status.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, key string) {
	h.render(w, r, status, "error", nil, map[string]any{"Message": key, "Status": status})
}

// serverError logs err (once, here; never a secret) and shows the generic
// error page.
func (h *Handler) serverError(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.log.ErrorContext(r.Context(), "console: "+what, "error", err)
	h.errorPage(w, r, http.StatusInternalServerError, "errServer")
}

// pageFunc serves a page for a signed-in operator.
type pageFunc func(w http.ResponseWriter, r *http.Request, op *operator)

// page wraps a page that needs a signed-in operator: without a session
// the browser goes to the sign-in page and comes back after.
func (h *Handler) page(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op, ok := h.requireOperator(w, r)
		if ok {
			fn(w, r, op)
		}
	})
}

// change wraps a form post that changes something: the operator must be
// signed in, hold the admin role, and the form must carry the CSRF token.
// formID names the form in the log.
func (h *Handler) change(formID string, fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			h.errorPage(w, r, http.StatusBadRequest, "errForm")
			return
		}
		if !h.checkCSRF(r) {
			h.log.WarnContext(r.Context(), "console: form refused: CSRF check failed", "form", formID)
			h.errorPage(w, r, http.StatusForbidden, "errCSRF")
			return
		}
		op, ok := h.requireOperator(w, r)
		if !ok {
			return
		}
		if !op.canChange() {
			h.log.WarnContext(r.Context(), "console: change refused: read-only operator", "form", formID, "operator", op.name())
			h.render(w, r, http.StatusForbidden, "error", op, map[string]any{"Message": "errReadOnly", "Status": http.StatusForbidden})
			return
		}
		fn(w, r, op)
	})
}

// requireOperator returns the signed-in operator, or answers for the
// request (sign-in page, refusal or error) and reports false.
func (h *Handler) requireOperator(w http.ResponseWriter, r *http.Request) (*operator, bool) {
	op, err := h.operatorOf(r)
	switch {
	case errors.Is(err, errNoRole):
		h.endSession(w)
		h.errorPage(w, r, http.StatusForbidden, "errNoRole")
		return nil, false
	case err != nil:
		h.serverError(w, r, "look up the operator", err)
		return nil, false
	case op == nil:
		next := Prefix
		if r.Method == http.MethodGet {
			next = r.URL.RequestURI()
		}
		http.Redirect(w, r, Prefix+"login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return nil, false
	}
	return op, true
}

// static serves the embedded stylesheet and script.
func (h *Handler) static(w http.ResponseWriter, r *http.Request) {
	name := pathVar(r, "file")
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", mime.TypeByExtension(path.Ext(name)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}

// pathVar is the unescaped path variable name of r.
func pathVar(r *http.Request, name string) string {
	v, err := url.PathUnescape(mux.Vars(r)[name])
	if err != nil {
		return ""
	}
	return v
}

// locale is the page language: the switch's cookie, else Accept-Language.
func (h *Handler) locale(r *http.Request) string {
	if l := provider.SupportedLocale(h.cookie(r, cookieLang)); l != "" {
		return l
	}
	return pickLocale(r.Header.Get("Accept-Language"))
}
