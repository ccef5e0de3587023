package provider

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/wxoidc/wxoidc/storage"
)

// Brute-force bound of user codes in the Mini Program: each signed-in
// person may look up or decide ten codes at once, then one every six
// seconds (a person scans a code or two; 20^8 codes stay out of reach).
const (
	verifyRate  = 1.0 / 6
	verifyBurst = 10
)

// handleDeviceVerify serves GET/POST /oauth2/device/verify (SPEC §11): a
// Mini Program, with its bearer access token, shows the person a pending
// device or desktop login (GET ?user_code=) and approves or denies it for
// them (POST user_code, action=approve|deny; 204).
func (p *Provider) handleDeviceVerify(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	caller, ok := p.bearerWeChatCaller(w, r, "")
	if !ok {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	now := p.cfg.Now().UTC()
	allowed, err := p.cfg.Storage.TakeRate(ctx, "device-verify/"+caller.subject, 1, verifyRate, verifyBurst, now)
	if err != nil {
		p.verifyError(ctx, w, http.StatusServiceUnavailable, "temporarily_unavailable", "The provider's storage is unavailable; retry shortly.", err)
		return
	}
	if !allowed {
		retryAfterHeader(w, 6)
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "temporarily_unavailable",
			"error_description": "Too many user codes tried; wait a few seconds (see Retry-After)."})
		return
	}
	code, ok := storage.NormalizeUserCode(r.Form.Get("user_code"))
	if !ok {
		p.verifyError(ctx, w, http.StatusBadRequest, "invalid_request", "The 'user_code' parameter is missing or is not a user code (8 letters, XXXX-XXXX).", nil)
		return
	}
	if r.Method == http.MethodGet {
		d, err := p.cfg.Storage.DeviceAuthByUserCode(ctx, code)
		if err != nil {
			p.verifyLookupError(ctx, w, err)
			return
		}
		if !p.verifyPending(ctx, w, d, now) {
			return
		}
		name := d.ClientID
		if c, err := p.cfg.Storage.Client(ctx, d.ClientID); err == nil && c.Name != "" {
			name = c.Name
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"client_id":   d.ClientID,
			"client_name": name,
			"scope":       strings.Join(d.Scopes, " "),
			"user_code":   storage.FormatUserCode(d.UserCode),
			"kind":        d.Kind,
			"expires_in":  int(d.ExpiresAt.Sub(now) / time.Second),
		})
		return
	}
	var approve bool
	switch r.Form.Get("action") {
	case "approve":
		approve = true
	case "deny":
	default:
		p.verifyError(ctx, w, http.StatusBadRequest, "invalid_request", "The 'action' parameter must be approve or deny.", nil)
		return
	}
	d, err := p.cfg.Storage.DecideDeviceAuth(ctx, code, storage.DeviceDecision{
		Approve: approve, Subject: caller.subject, AuthTime: now,
		AMR: []string{"wechat", AMRMiniProgram}, Now: now,
	})
	if errors.Is(err, storage.ErrConflict) {
		p.verifyPending(ctx, w, d, now) // writes why
		return
	}
	if err != nil {
		p.verifyLookupError(ctx, w, err)
		return
	}
	if approve {
		if err := p.RememberConsent(ctx, caller.subject, d.ClientID, d.Scopes, now); err != nil {
			p.log.WarnContext(ctx, "remember consent", "error", err)
		}
	}
	p.log.InfoContext(ctx, "device authorization decided in the mini program", "approved", approve, "kind", d.Kind, "client_id", d.ClientID, "subject", caller.subject)
	w.WriteHeader(http.StatusNoContent)
}

// verifyPending reports whether d can still be decided; if not, it writes
// why: expired_token, or invalid_grant for one already decided.
func (p *Provider) verifyPending(ctx context.Context, w http.ResponseWriter, d storage.DeviceAuth, now time.Time) bool {
	switch {
	case !now.Before(d.ExpiresAt):
		p.verifyError(ctx, w, http.StatusBadRequest, "expired_token", "The user code has expired; start again on the device for a new one.", nil)
	case d.Status == storage.DeviceApproved || d.Status == storage.DeviceRedeemed:
		p.verifyError(ctx, w, http.StatusBadRequest, "invalid_grant", "The user code was already approved.", nil)
	case d.Status == storage.DeviceDenied:
		p.verifyError(ctx, w, http.StatusBadRequest, "invalid_grant", "The user code was denied; it cannot be approved any more.", nil)
	default:
		return true
	}
	return false
}

func (p *Provider) verifyLookupError(ctx context.Context, w http.ResponseWriter, err error) {
	if errors.Is(err, storage.ErrNotFound) {
		p.verifyError(ctx, w, http.StatusBadRequest, "invalid_grant", "The user code is unknown.", nil)
		return
	}
	if storage.IsUnavailable(err) {
		w.Header().Set("Retry-After", "5")
		p.verifyError(ctx, w, http.StatusServiceUnavailable, "temporarily_unavailable", "The provider's storage is unavailable; retry shortly.", err)
		return
	}
	p.verifyError(ctx, w, http.StatusInternalServerError, "server_error", "The request could not be completed.", err)
}

func (p *Provider) verifyError(ctx context.Context, w http.ResponseWriter, status int, code, desc string, err error) {
	if err != nil {
		p.log.ErrorContext(ctx, "device verify", "error", err)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

// RememberConsent records that subject let a third-party client have
// scopes (on top of what it allowed before), as the consent page does; a
// first-party client (skip_consent) needs none. The device flow's
// approvals are consents: the person saw the client and the scopes.
func (p *Provider) RememberConsent(ctx context.Context, subject, clientID string, scopes []string, now time.Time) error {
	c, err := p.cfg.Storage.Client(ctx, clientID)
	if err != nil || c.SkipConsent {
		return err
	}
	all := slices.Clone(scopes)
	if old, err := p.cfg.Storage.Consent(ctx, subject, clientID); err == nil {
		all = append(all, old.Scopes...)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	sort.Strings(all)
	return p.cfg.Storage.PutConsent(ctx, storage.Consent{Subject: subject, ClientID: clientID, Scopes: slices.Compact(all), GrantedAt: now})
}
