package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

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
// access and refresh token — as long as the refresh token in that
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
	return keys.NewSealer(secret, keys.PurposeRefreshGrace)
}

// graceCapture collects, during one refresh, what its answer holds: the
// raw tokens exist only while fosite issues them, and the answer is kept in
// the rotation's own transaction (no extra write, no extra round trip).
type graceCapture struct {
	oldSignature    string // of the refresh token presented
	access, refresh string // the tokens issued
}

type graceKey struct{}

// withGraceCapture prepares ctx to capture the answer of a refresh of the
// presented refresh token.
func (p *Provider) withGraceCapture(ctx context.Context, presented string) context.Context {
	return context.WithValue(ctx, graceKey{}, &graceCapture{oldSignature: p.core.RefreshTokenSignature(ctx, presented)})
}

// capturingStrategy records the tokens it issues into a graceCapture of
// the context, if there is one.
type capturingStrategy struct{ oauth2.CoreStrategy }

// GenerateAccessToken implements oauth2.AccessTokenStrategy.
func (s capturingStrategy) GenerateAccessToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	tok, sig, err := s.CoreStrategy.GenerateAccessToken(ctx, r)
	if c, ok := ctx.Value(graceKey{}).(*graceCapture); ok && err == nil {
		c.access = tok
	}
	return tok, sig, err
}

// GenerateRefreshToken implements oauth2.RefreshTokenStrategy.
func (s capturingStrategy) GenerateRefreshToken(ctx context.Context, r fosite.Requester) (string, string, error) {
	tok, sig, err := s.CoreStrategy.GenerateRefreshToken(ctx, r)
	if c, ok := ctx.Value(graceKey{}).(*graceCapture); ok && err == nil {
		c.refresh = tok
	}
	return tok, sig, err
}

// keepAnswer stores, in the rotation's transaction, the answer of the
// refresh that issues the refresh token with successorSignature for req:
// access and refresh token, type, scope and lifetime. The ID token is not
// kept: it is signed after the transaction, and OpenID Connect Core §12.2
// lets a refresh answer go without one.
func (s fositeStore) keepAnswer(ctx context.Context, c *graceCapture, successorSignature string, req fosite.Requester) error {
	now := s.now()
	body := map[string]any{
		"access_token": c.access, "refresh_token": c.refresh, "token_type": "bearer",
		"scope": strings.Join(req.GetGrantedScopes(), " "),
	}
	if exp := req.GetSession().GetExpiresAt(fosite.AccessToken); !exp.IsZero() {
		body["expires_in"] = float64(int64(exp.Sub(now).Round(time.Second).Seconds()))
	}
	plain, err := json.Marshal(graceAnswer{Body: body, IssuedAt: now})
	if err != nil {
		return err
	}
	sealed, err := s.sealer.Seal(plain, []byte(c.oldSignature))
	if err != nil {
		return err
	}
	return s.Storage.PutRefreshSuccessor(ctx, storage.RefreshSuccessor{
		Signature: c.oldSignature, SuccessorSignature: successorSignature,
		Response: sealed, ExpiresAt: now.Add(s.grace),
	})
}

// graceAnswerFor returns the kept answer for a rotated refresh token's
// signature, waiting up to graceWait for a concurrent winner to store it.
// It reports false when there is none (the grace has passed, or the token
// was rotated long ago) or when the refresh token in it is no longer
// active (revoked, or rotated again).
func graceAnswerFor(ctx context.Context, s storage.Storage, sealer *keys.Sealer, signature string, now func() time.Time) (graceAnswer, bool) {
	deadline := now().Add(graceWait)
	for {
		rec, err := s.RefreshSuccessor(ctx, signature, now())
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
		if !errors.Is(err, storage.ErrNotFound) || !now().Add(graceStep).Before(deadline) {
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
