package weblogin

import (
	"context"
	"net/http"
)

// WorkPushes runs one round of the push worker (RunPushWorker's tick).
func (a *Authenticator) WorkPushes(ctx context.Context) { a.workPushes(ctx) }

// ShowChooser serves the login page of login state id as handleLogin does:
// pre-rendered when it can be.
func (a *Authenticator) ShowChooser(w http.ResponseWriter, r *http.Request, id string) {
	a.showChooser(w, r, r.URL.Query(), id, a.loginMethods())
}

// RenderChooser serves the login page of login state id through the
// template, as before it was pre-rendered.
func (a *Authenticator) RenderChooser(w http.ResponseWriter, r *http.Request, id string) {
	locale := pickLocale(r.URL.Query().Get("ui_locales"), r.Header.Get("Accept-Language"))
	a.render(w, http.StatusOK, "login", locale, chooserData(a, id, locale, a.loginMethods()))
}

// ChooserLocales are the page languages whose login page is pre-rendered.
func (a *Authenticator) ChooserLocales() int { return len(a.choosers) }
