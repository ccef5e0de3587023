package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/storage"
)

// standardError turns fosite's own error codes into the RFC 6749 codes a
// client can act on; RFC codes pass through. Anything that is not an
// RFC6749Error becomes server_error.
func standardError(err error) *fosite.RFC6749Error {
	if storage.IsUnavailable(err) {
		// The database is down or restarting: a retry will do (RFC 6749
		// §5.2 temporarily_unavailable, 503 with Retry-After).
		return fosite.ErrTemporarilyUnavailable.WithWrap(err).WithHint("The provider's storage is unavailable; retry shortly.")
	}
	var rfc *fosite.RFC6749Error
	if !errors.As(err, &rfc) {
		return fosite.ErrServerError.WithWrap(err).WithDebug(err.Error())
	}
	switch rfc.ErrorField {
	case fosite.ErrScopeNotGranted.ErrorField:
		return remap(rfc, fosite.ErrInvalidScope)
	case fosite.ErrInvalidState.ErrorField:
		return remap(rfc, fosite.ErrInvalidRequest)
	case fosite.ErrJTIKnown.ErrorField, fosite.ErrRequestUnauthorized.ErrorField:
		return remap(rfc, fosite.ErrInvalidClient)
	case fosite.ErrInactiveToken.ErrorField, fosite.ErrTokenExpired.ErrorField,
		fosite.ErrTokenSignatureMismatch.ErrorField, fosite.ErrInvalidTokenFormat.ErrorField,
		fosite.ErrTokenClaim.ErrorField:
		return remap(rfc, fosite.ErrInvalidGrant)
	case fosite.ErrRequestURINotSupported.ErrorField, fosite.ErrRequestNotSupported.ErrorField,
		fosite.ErrRegistrationNotSupported.ErrorField, fosite.ErrInvalidRequestURI.ErrorField,
		fosite.ErrInvalidRequestObject.ErrorField, fosite.ErrLoginRequired.ErrorField,
		fosite.ErrConsentRequired.ErrorField, fosite.ErrInteractionRequired.ErrorField:
		return rfc // OpenID Connect Core §3.1.2.6 codes
	}
	if rfc.CodeField >= 500 && rfc.ErrorField != fosite.ErrTemporarilyUnavailable.ErrorField && rfc.ErrorField != fosite.ErrServerError.ErrorField {
		return remap(rfc, fosite.ErrServerError)
	}
	return rfc
}

// remap keeps err's hint and debug text under another error code.
func remap(err, to *fosite.RFC6749Error) *fosite.RFC6749Error {
	out := to.WithWrap(err).WithDebug(err.GetDescription())
	if err.HintField != "" {
		out = out.WithHint(err.HintField)
	}
	return out
}

// writeTokenError writes a token, revocation or PAR error as JSON. A client
// that tried HTTP Basic authentication and failed is challenged with
// WWW-Authenticate (RFC 6749 §5.2).
func (p *Provider) writeTokenError(ctx context.Context, w http.ResponseWriter, r *http.Request, ar fosite.AccessRequester, err error) {
	p.flushDeferred(ctx)
	rfc := standardError(err)
	p.logError(ctx, r, rfc)
	if rfc.ErrorField == fosite.ErrTemporarilyUnavailable.ErrorField && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter(rfc))
	}
	if rfc.ErrorField == fosite.ErrInvalidClient.ErrorField {
		if strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q`, p.cfg.Issuer))
		}
	}
	p.oauth2.WriteAccessError(ctx, w, ar, rfc)
}

// logError logs a failed request once: a failed WeChat call at its own
// level with the API and errcode (see wechatFailure), other server-side
// failures at ERROR with fosite's debug text (which never reaches clients
// outside dev), and nothing else: client mistakes are the client's to see
// in the response.
func (p *Provider) logError(ctx context.Context, r *http.Request, rfc *fosite.RFC6749Error) {
	var wf *wechatFailure
	if errors.As(rfc, &wf) {
		p.log.Log(ctx, wf.level, wf.msg, "path", r.URL.Path, "error", rfc.ErrorField,
			"wechat_api", wf.api, "wechat_errcode", wf.code, "cause", wf.err.Error())
		return
	}
	if rfc.CodeField < 500 {
		return
	}
	p.log.ErrorContext(ctx, "request failed",
		"path", r.URL.Path, "error", rfc.ErrorField, "debug", rfc.DebugField, "cause", errorCause(rfc))
}

func errorCause(rfc *fosite.RFC6749Error) string {
	if c := rfc.Unwrap(); c != nil {
		return c.Error()
	}
	return ""
}
