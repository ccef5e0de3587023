package keys

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wxoidc/wxoidc/storage"
)

// snapshot is an immutable view of the loaded keys. Every field is set
// before the snapshot is published through Manager.snap and never changed
// afterwards.
type snapshot struct {
	order     []*entry            // storage order (oldest first): the JWKS order
	byKID     map[string]*entry   // every loaded key
	byAlg     map[string][]*entry // per algorithm, sorted by (ActivatesAt, KID)
	retention time.Duration

	jwks      []byte             // JSON of set
	set       jose.JSONWebKeySet // the keys published at build time
	jwksUntil time.Time          // first time the published set changes; zero if never
}

// entry is one loaded key and where it stands in its algorithm's sequence.
type entry struct {
	kid         string
	alg         string
	activatesAt time.Time
	// retiredAt is the successor's ActivatesAt; zero if there is no
	// successor (yet).
	retiredAt time.Time
	key       *loadedKey // never nil
}

// publishedAt reports whether e is in the JWKS at now: from the moment it
// is stored until RetiredAt+retention.
func (e *entry) publishedAt(now time.Time, retention time.Duration) bool {
	return e.retiredAt.IsZero() || now.Before(e.retiredAt.Add(retention))
}

// current returns the signing key of alg at now, or nil.
func (s *snapshot) current(alg string, now time.Time) *entry {
	seq := s.byAlg[alg]
	for i := len(seq) - 1; i >= 0; i-- {
		if !seq[i].activatesAt.After(now) {
			return seq[i]
		}
	}
	return nil
}

// less orders keys of one algorithm: by ActivatesAt, then by KID. The last
// key in this order whose ActivatesAt has passed is the one that signs.
func less(aAct time.Time, aKID string, bAct time.Time, bKID string) int {
	if c := aAct.Compare(bAct); c != 0 {
		return c
	}
	return strings.Compare(aKID, bKID)
}

// buildSnapshot makes the snapshot of recs (skipping those not in loaded).
func (m *Manager) buildSnapshot(recs []storage.SigningKey, loaded map[string]*loadedKey, now time.Time) *snapshot {
	s := &snapshot{
		byKID:     make(map[string]*entry, len(recs)),
		byAlg:     make(map[string][]*entry),
		retention: m.cfg.Retention,
	}
	for _, r := range recs {
		lk, ok := loaded[r.KID]
		if !ok {
			continue
		}
		e := &entry{kid: r.KID, alg: r.Algorithm, activatesAt: r.ActivatesAt, key: lk}
		s.order = append(s.order, e)
		s.byKID[e.kid] = e
		s.byAlg[e.alg] = append(s.byAlg[e.alg], e)
	}
	for _, seq := range s.byAlg {
		slices.SortFunc(seq, func(a, b *entry) int { return less(a.activatesAt, a.kid, b.activatesAt, b.kid) })
		for i := 0; i+1 < len(seq); i++ {
			seq[i].retiredAt = seq[i+1].activatesAt
		}
	}
	s.prepareJWKS(now)
	return s
}

// prepareJWKS sets jwks, set and jwksUntil for now. Only for a snapshot
// that is not yet published.
func (s *snapshot) prepareJWKS(now time.Time) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	var until time.Time
	for _, e := range s.order {
		if !e.publishedAt(now, s.retention) {
			continue
		}
		set.Keys = append(set.Keys, e.key.public)
		if !e.retiredAt.IsZero() {
			if exp := e.retiredAt.Add(s.retention); until.IsZero() || exp.Before(until) {
				until = exp
			}
		}
	}
	b, err := json.Marshal(set)
	if err != nil {
		// Public JWKs of the three supported key types always marshal;
		// publish an empty set rather than a partial one.
		b = []byte(`{"keys":[]}`)
	}
	s.set, s.jwks, s.jwksUntil = set, b, until
}

// JWKS returns the published public keys (RFC 7517 §5) as prepared JSON:
// every key from the moment it is stored until RetiredAt+Retention, each with
// kid, alg and use=sig and never a private member. The bytes are built when
// the snapshot changes (Load, Rotate, or a key's retention ending), not per
// call; they are shared and MUST NOT be modified.
func (m *Manager) JWKS() []byte { return m.jwksSnapshot().jwks }

// KeySet returns the published public keys as a go-jose v4 set (the same
// keys as [Manager.JWKS]). The slice is the caller's; the keys in it share
// their public key values with the manager.
func (m *Manager) KeySet() jose.JSONWebKeySet {
	s := m.jwksSnapshot()
	return jose.JSONWebKeySet{Keys: slices.Clone(s.set.Keys)}
}

// jwksSnapshot returns the current snapshot, first replacing it with one
// whose prepared JWKS is rebuilt if a retired key's retention has ended
// since it was built.
func (m *Manager) jwksSnapshot() *snapshot {
	s := m.snap.Load()
	if s.jwksUntil.IsZero() {
		return s
	}
	now := m.cfg.Now()
	if now.Before(s.jwksUntil) {
		return s
	}
	ns := *s
	ns.prepareJWKS(now)
	m.snap.CompareAndSwap(s, &ns) // if Load replaced s meanwhile, its snapshot is newer
	return &ns
}
