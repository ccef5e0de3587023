package provider

import (
	"context"

	"github.com/ory/fosite"
)

// Metrics receives the provider's countable events. Implementations must
// be safe for concurrent use and must not block; package ops has one.
type Metrics interface {
	// TokenIssued is called once the token endpoint has written a
	// successful response, with the grant type and the client's ID. ctx is
	// the request's.
	TokenIssued(ctx context.Context, grantType, clientID string)
}

// tokenIssued tells Metrics about a successful token response.
func (p *Provider) tokenIssued(ctx context.Context, ar fosite.AccessRequester) {
	if p.cfg.Metrics == nil {
		return
	}
	grant := "unknown"
	if gts := ar.GetGrantTypes(); len(gts) > 0 {
		grant = gts[0]
	}
	clientID := ""
	if c := ar.GetClient(); c != nil {
		clientID = c.GetID()
	}
	p.cfg.Metrics.TokenIssued(ctx, grant, clientID)
}
