package provider

import "net/http"

// handlePAR serves pushed authorization requests (RFC 9126).
func (p *Provider) handlePAR(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if ok, wait := p.authorizeLimits.Allow(r, p.cfg.Now()); !ok {
		retryAfterHeader(w, wait)
		p.writeTokenError(ctx, w, r, nil, errTooManyRequests)
		return
	}
	if err := parseAuthorizeForm(w, r, true); err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	if _, err := requestClientID(r); err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	if err := p.expandRequestObject(ctx, r, true); err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	// A request object's claims are bounded like parameters.
	if err := normalizeAuthorizeForm(r.Form, true); err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	ar, err := p.oauth2.NewPushedAuthorizeRequest(ctx, r)
	if err == nil && !redirectRegistered(ar) {
		err = errLoopbackPort
	}
	if err == nil {
		err = checkAuthorizeRequest(ar)
	}
	if err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	dropClientAuth(ar.GetRequestForm())
	resp, err := p.oauth2.NewPushedAuthorizeResponse(ctx, ar, newSession())
	if err != nil {
		p.writeTokenError(ctx, w, r, nil, err)
		return
	}
	p.oauth2.WritePushedAuthorizeResponse(ctx, w, ar, resp)
}
