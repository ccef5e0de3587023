package provider

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ory/fosite/token/jwt"

	"github.com/wxoidc/wxoidc/storage"
)

// OpenID Connect Back-Channel Logout 1.0.
//
// When a browser session ends (RP-initiated logout, sign-out everywhere, a
// user disabled or deleted) or a person withdraws a client's consent, a
// logout job is queued in storage for every client that received an ID
// token in that session and registered a backchannel_logout_uri. One
// replica at a time (a storage lease) delivers due jobs: it claims a few
// in storage (storage.BackchannelStore.ClaimLogouts), POSTs a signed
// logout token to the URI registered at delivery time, with a timeout and
// without following redirects, and retries failures with exponential
// backoff until BackchannelRetryFor has passed.
//
// What is guaranteed across replicas: every queued logout is attempted
// until it is delivered or given up, whichever replica queued it and even
// if the delivering replica dies (its claims lapse and another replica
// takes the jobs over). Each logout is delivered once, except in one
// window: the relying party accepted the token but the deliverer could not
// record it (it died, lost its database, or stalled past its claim) before
// the claim lapsed; the logout is then delivered again. Delivery is
// therefore at least once, and exactly once unless that happens. A
// redelivery carries the same jti (derived from the job), so a relying
// party that remembers jtis (§2.6 step 10) can recognise it. Claims are
// judged by each replica's clock, which must be within
// logoutClaimMargin of the others' (NTP).

// BackchannelRetryFor is how long a back-channel logout is retried before
// it is given up.
const BackchannelRetryFor = storage.LogoutRetryFor

// backchannelEvent is the events member of a logout token (§2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

const (
	logoutTokenLifetime = 2 * time.Minute
	logoutLease         = "backchannel-logout"
	// logoutLeaseTTL is how long the delivery lease outlives its holder's
	// last renewal (plus the poll interval): how long deliveries pause
	// when the holder dies.
	logoutLeaseTTL = 10 * time.Second
	// logoutParallel is how many jobs are claimed, and delivered
	// concurrently, at a time.
	logoutParallel = 8
	// logoutClaimMargin is what a claim lasts beyond its attempt's time
	// limit: the time to record the outcome, and the clock difference
	// between replicas that is tolerated.
	logoutClaimMargin = 5 * time.Second
)

// SessionSID is the sid (OpenID Connect Front- and Back-Channel Logout) of
// the browser session with the given ID: public, stable for the session,
// and not a way back to the ID, which is a secret.
func SessionSID(sessionID string) string {
	h := sha256.Sum256([]byte("wxoidc-sid\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(h[:18])
}

// LogoutMetrics is implemented by Metrics that count back-channel logout
// deliveries.
type LogoutMetrics interface {
	// BackchannelLogout is called after each delivery attempt with its
	// outcome: "delivered", "failed" (it will be retried), "abandoned"
	// (retries ran out) or "dropped" (the client or its URI is gone).
	BackchannelLogout(ctx context.Context, clientID, outcome string)
}

// BackchannelConfig tunes the delivery of back-channel logouts; zero
// values take the defaults.
type BackchannelConfig struct {
	// PollInterval is how often the delivering replica looks for due
	// logouts; default 1s.
	PollInterval time.Duration
	// MinBackoff is the wait after a first failed delivery, doubling up to
	// a minute; default 1s.
	MinBackoff time.Duration
}

// EndSessions queues back-channel logouts for every browser session of
// subject. Storage's EndUserSessions, SetUserDisabled and DeleteUser
// (sign out everywhere, a user disabled or erased) already do; this is for
// a caller that ends sessions some other way.
func (p *Provider) EndSessions(ctx context.Context, subject string) error {
	now := time.Now()
	_, err := p.cfg.Storage.EnqueueSubjectLogouts(ctx, subject, "", now, now.Add(BackchannelRetryFor))
	return err
}

// recordSessionClient remembers that client got an ID token in the
// browser session of auth, if the client wants back-channel logouts.
func (p *Provider) recordSessionClient(ctx context.Context, client *storage.Client, auth *Authentication) {
	if auth.SID == "" || client.BackchannelLogoutURI == "" {
		return
	}
	until := auth.SessionExpiresAt
	if until.IsZero() {
		until = time.Now().Add(p.cfg.RefreshTokenLifespan)
	}
	if err := p.cfg.Storage.AddSessionClient(ctx, auth.SID, auth.Subject, client.ID, until); err != nil {
		p.log.WarnContext(ctx, "backchannel logout: the session's client was not recorded", "client_id", client.ID, "error", err)
	}
}

// RunBackchannelLogout delivers due back-channel logouts until ctx ends,
// while this replica (holder) holds the delivery lease.
func (p *Provider) RunBackchannelLogout(ctx context.Context, holder string) {
	poll := p.cfg.Backchannel.PollInterval
	t := time.NewTicker(poll)
	defer t.Stop()
	defer p.cfg.Storage.ReleaseLease(context.WithoutCancel(ctx), logoutLease, holder)
	for {
		// A full batch means more may be due: go on at once, renewing
		// the lease before each batch.
		for {
			ok, err := p.cfg.Storage.AcquireLease(ctx, logoutLease, holder, logoutLeaseTTL+poll)
			if err != nil && ctx.Err() == nil {
				p.log.WarnContext(ctx, "backchannel logout: lease", "error", err)
			}
			if !ok || p.deliverDue(ctx) < logoutParallel || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deliverDue claims up to logoutParallel due logouts, delivers them
// concurrently and reports how many it claimed. Each attempt must end
// within the outbound client's time limit; the claim lasts
// logoutClaimMargin longer, so that no other replica takes a job while its
// attempt may still be under way or being recorded.
func (p *Provider) deliverDue(ctx context.Context) int {
	now := time.Now()
	limit := p.outbound.Timeout
	jobs, err := p.cfg.Storage.ClaimLogouts(ctx, now, now.Add(limit+logoutClaimMargin), logoutParallel)
	if err != nil {
		if ctx.Err() == nil {
			p.log.WarnContext(ctx, "backchannel logout: claim due jobs", "error", err)
		}
		return 0
	}
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() { p.deliver(ctx, j, now.Add(limit)) })
	}
	wg.Wait()
	return len(jobs)
}

// deliver makes one delivery attempt of the claimed job j, ending by
// deadline, and records its outcome.
func (p *Provider) deliver(ctx context.Context, j storage.LogoutJob, deadline time.Time) {
	// The outcome is recorded even when ctx ends (shutdown) after the
	// relying party answered; recording is what prevents a redelivery.
	record := context.WithoutCancel(ctx)
	attempt, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	client, err := p.cfg.Storage.Client(attempt, j.ClientID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && client.BackchannelLogoutURI == "") {
		p.logoutOutcome(record, j, "dropped", 0, nil)
		p.finishLogout(record, j)
		return
	}
	if err != nil {
		return // storage trouble: the job is due again when its claim lapses
	}
	status, err := p.postLogoutToken(attempt, &client, j)
	if err == nil {
		p.logoutOutcome(record, j, "delivered", status, nil)
		p.finishLogout(record, j)
		return
	}
	if ctx.Err() != nil {
		return // shutting down: the job is due again when its claim lapses
	}
	next := time.Now().Add(p.logoutBackoff(j.Attempts))
	if !next.Before(j.ExpiresAt) {
		p.logoutOutcome(record, j, "abandoned", status, err)
		p.finishLogout(record, j)
		return
	}
	p.logoutOutcome(record, j, "failed", status, err)
	ok, err := p.cfg.Storage.RescheduleLogout(record, j, j.Attempts+1, next)
	switch {
	case err != nil:
		p.log.WarnContext(ctx, "backchannel logout: reschedule", "client_id", j.ClientID, "error", err)
	case !ok:
		p.log.WarnContext(ctx, "backchannel logout: the claim lapsed before the failed attempt was recorded", "client_id", j.ClientID)
	}
}

// finishLogout deletes the claimed job j after its last attempt. If that
// cannot be recorded, the job is due again when its claim lapses: the
// relying party may then get the logout twice, which is logged.
func (p *Provider) finishLogout(ctx context.Context, j storage.LogoutJob) {
	ok, err := p.cfg.Storage.DeleteLogout(ctx, j)
	switch {
	case err != nil:
		p.log.WarnContext(ctx, "backchannel logout: finished job not deleted; it may be delivered again", "client_id", j.ClientID, "error", err)
	case !ok:
		p.log.WarnContext(ctx, "backchannel logout: the claim lapsed before the job was deleted; it may be delivered again", "client_id", j.ClientID)
	}
}

// logoutBackoff is the wait after the attempt-th failure (0-based):
// MinBackoff doubling, at most a minute.
func (p *Provider) logoutBackoff(attempt int) time.Duration {
	d := p.cfg.Backchannel.MinBackoff
	for range min(attempt, 16) {
		d *= 2
	}
	return min(d, time.Minute)
}

// logoutOutcome counts an attempt and records it in the audit trail
// (storage.EventBackchannelLogout). The logout token itself is never
// recorded or logged.
func (p *Provider) logoutOutcome(ctx context.Context, j storage.LogoutJob, outcome string, status int, err error) {
	if m, ok := p.cfg.Metrics.(LogoutMetrics); ok {
		m.BackchannelLogout(ctx, j.ClientID, outcome)
	}
	details := map[string]any{"outcome": outcome, "attempt": j.Attempts + 1, "jti": logoutJTI(j)}
	if status != 0 {
		details["status"] = status
	}
	if err != nil {
		details["error"] = err.Error()
	}
	p.audit.Record(ctx, storage.Event{Type: storage.EventBackchannelLogout, Subject: j.Subject, ClientID: j.ClientID, Details: details})
}

// postLogoutToken sends a fresh logout token for j to the client's
// registered URI and reports the HTTP status; 200 and 204 are success
// (§2.8).
func (p *Provider) postLogoutToken(ctx context.Context, client *storage.Client, j storage.LogoutJob) (int, error) {
	token, err := p.logoutToken(ctx, client, j)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, client.BackchannelLogoutURI,
		strings.NewReader(url.Values{"logout_token": {token}}.Encode()))
	if err != nil {
		return 0, errors.New("invalid backchannel_logout_uri")
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.outbound.Do(req)
	if err != nil {
		return 0, errors.New("the relying party did not answer")
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return resp.StatusCode, errors.New("HTTP status " + strconv.Itoa(resp.StatusCode))
	}
	return resp.StatusCode, nil
}

// logoutJTI is the jti of j's logout tokens: the same for every attempt
// (and every redelivery) of one logout, different for every logout, and
// not a way back to the session.
func logoutJTI(j storage.LogoutJob) string {
	h := sha256.Sum256([]byte("wxoidc-logout-jti\x00" + j.ID))
	return hex.EncodeToString(h[:16])
}

// logoutToken builds and signs a logout token (§2.4) for j, with the
// client's ID-token algorithm: iss, aud, iat, exp, jti, events, sub and
// sid; never a nonce. Its typ is logout+jwt (§2.4, RFC 8725 §3.11).
func (p *Provider) logoutToken(ctx context.Context, client *storage.Client, j storage.LogoutJob) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":    p.cfg.Issuer,
		"aud":    client.ID,
		"iat":    now.Unix(),
		"exp":    now.Add(logoutTokenLifetime).Unix(),
		"jti":    logoutJTI(j),
		"events": map[string]any{backchannelEvent: map[string]any{}},
		"sub":    j.Subject,
	}
	if j.SID != "" {
		claims["sid"] = j.SID
	}
	header := &jwt.Headers{Extra: map[string]any{"typ": "logout+jwt", "alg": idTokenAlg(client)}}
	token, _, err := p.idSigner.Generate(ctx, claims, header)
	return token, err
}
