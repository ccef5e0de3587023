package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/ory/fosite"

	"github.com/wxoidc/wxoidc/keys"
	"github.com/wxoidc/wxoidc/storage"
)

// The refresh-token reuse grace (Config.RefreshReuseGrace).
//
// A refresh rotates its refresh token, and presenting a rotated token again
// revokes the whole grant (fosite's reuse detection). Clients that refresh
// from several places at once (the pages of a Mini Program) would lose
// their grant to their own race. Within the grace, a rotated token
// presented again gets the very answer its first refresh got — the same
// access, refresh and ID token — as long as the refresh token in that
// answer is still active; no new family member is minted. The answer is
// kept in storage, encrypted, so every replica can give it.

// graceWait bounds how long a request whose refresh token was just rotated
// waits for the winner's answer to reach storage.
const (
	graceWait = time.Second
	graceStep = 20 * time.Millisecond
)

// withinGrace carries the answer of a rotated refresh token's first
// refresh, found within the grace, and the client it was given to.
type withinGrace struct {
	answer   graceAnswer
	clientID string
}

func (*withinGrace) Error() string { return "refresh token rotated within the reuse grace" }

// graceAnswer is a token response kept for the grace.
type graceAnswer struct {
	Body     map[string]any `json:"body"`
	IssuedAt time.Time      `json:"issued_at"`
}

// newGraceSealer seals kept answers under a key of their own.
func newGraceSealer(secret []byte) (*keys.Sealer, error) {
	return keys.NewSealer(secret, "refresh-grace")
}

// keepAnswer stores what the refresh that rotated the presented token
// answered, for the grace. A failure is logged, not fatal: the client has
// its tokens; only a concurrent duplicate would miss the grace.
func (p *Provider) keepAnswer(ctx context.Context, r *http.Request, resp fosite.AccessResponder) {
	now := time.Now()
	body := resp.ToMap()
	successor, _ := body["refresh_token"].(string)
	if successor == "" {
		return
	}
	oldSig := p.core.RefreshTokenSignature(ctx, r.PostForm.Get("refresh_token"))
	plain, err := json.Marshal(graceAnswer{Body: body, IssuedAt: now})
	if err == nil {
		var sealed []byte
		if sealed, err = p.graceSealer.Seal(plain, []byte(oldSig)); err == nil {
			err = p.cfg.Storage.PutRefreshSuccessor(ctx, storage.RefreshSuccessor{
				Signature: oldSig, SuccessorSignature: p.core.RefreshTokenSignature(ctx, successor),
				Response: sealed, ExpiresAt: now.Add(p.cfg.RefreshReuseGrace),
			})
		}
	}
	if err != nil {
		p.log.WarnContext(ctx, "refresh reuse grace: the answer was not kept", "error", err)
	}
}

// graceAnswerFor returns the kept answer for a rotated refresh token's
// signature, waiting up to graceWait for a concurrent winner to store it.
// It reports false when there is none (the grace has passed, or the token
// was rotated long ago) or when the refresh token in it is no longer
// active (revoked, or rotated again).
func graceAnswerFor(ctx context.Context, s storage.Storage, sealer *keys.Sealer, signature string) (graceAnswer, bool) {
	deadline := time.Now().Add(graceWait)
	for {
		rec, err := s.RefreshSuccessor(ctx, signature, time.Now())
		if err == nil {
			if _, err := s.GetRefreshTokenSession(ctx, rec.SuccessorSignature, nil); err != nil {
				return graceAnswer{}, false
			}
			plain, err := sealer.Open(rec.Response, []byte(signature))
			var a graceAnswer
			if err != nil || json.Unmarshal(plain, &a) != nil {
				return graceAnswer{}, false
			}
			return a, true
		}
		if !errors.Is(err, storage.ErrNotFound) || !time.Now().Add(graceStep).Before(deadline) {
			return graceAnswer{}, false
		}
		select {
		case <-ctx.Done():
			return graceAnswer{}, false
		case <-time.After(graceStep):
		}
	}
}

// writeGraceAnswer answers with a kept token response; expires_in counts
// down from when it was first given.
func writeGraceAnswer(w http.ResponseWriter, a graceAnswer) {
	if exp, ok := a.Body["expires_in"].(float64); ok {
		left := int64(exp) - int64(time.Since(a.IssuedAt).Seconds())
		a.Body["expires_in"] = max(left, 0)
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, a.Body)
}

// graceCandidate reports whether a failed refresh may be a loser of a
// concurrent rotation and should look for the winner's answer.
func graceCandidate(err error) bool {
	return errors.Is(err, fosite.ErrInactiveToken) || errors.Is(err, storage.ErrNotFound) ||
		errors.Is(err, fosite.ErrSerializationFailure)
}
