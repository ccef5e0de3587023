package console

import "net/http"

// SessionCookie returns the session cookie of operator subject, as a
// WeChat sign-in sets it (for BenchmarkConsole, which signs in a seeded
// user without a browser). The role is still checked on every request.
func (h *Handler) SessionCookie(subject string) (*http.Cookie, error) {
	now := h.cfg.Now()
	v, err := h.seal(cookieSession, session{Subject: subject, IssuedAt: now.UTC(), ExpiresAt: now.Add(h.cfg.SessionLifetime).UTC()})
	if err != nil {
		return nil, err
	}
	return &http.Cookie{Name: h.cookieName(cookieSession), Value: v}, nil
}
