// Package keys owns wxoidc's signing-key lifecycle: it generates, stores
// (encrypted), loads, rotates, publishes and deletes the keys that sign ID
// tokens and JWT access tokens, using go-jose v4.
//
// It does not sign or verify tokens for fosite (provider/fositekey.go bridges
// a [SigningKey] to fosite's go-jose v3 signer), serve HTTP (the provider
// serves [Manager.JWKS] at /.well-known/jwks.json), or choose which algorithm
// a client gets (RS256 unless the client registered
// id_token_signed_response_alg; see package provider).
//
// # Algorithms and kids
//
// A [Manager] keeps keys for RS256 (RSA 2048, always present: OpenID Connect
// Core §15.1 makes it the default), ES256 (P-256) and EdDSA (Ed25519), as
// configured. A key's kid is its RFC 7638 JWK thumbprint (SHA-256,
// base64url without padding). Thumbprints are unique per key, reveal nothing
// beyond the public key, and let Load check that a stored public key, private
// key and kid belong together. Every JWS signed through [SigningKey.Signer]
// (or the provider's bridge) carries the kid in its header, and every JWKS
// entry carries kid, alg and use=sig.
//
// # Lifecycle
//
// Each stored key (a [storage.SigningKey] row) has a CreatedAt and an
// ActivatesAt. Everything else is derived from the rows, so every replica
// reading the same rows reaches the same answer:
//
//   - A key is published in the JWKS from the moment it is stored
//     (CreatedAt).
//   - Within one algorithm, keys are ordered by ActivatesAt, ties broken by
//     the greater kid. The key that signs now is the last one in that order
//     whose ActivatesAt has passed.
//   - A key signs from its ActivatesAt until the next key in that order
//     activates; that moment is its RetiredAt (derived, never stored).
//   - A retired key stays published until ExpiresAt = RetiredAt+Retention,
//     so every token it signed verifies until the token expires (Retention
//     must cover the longest token lifetime). After ExpiresAt it leaves the
//     JWKS, [Manager.VerificationKey] no longer returns it, and
//     [Manager.Run] deletes it from storage.
//   - [Manager.Rotate] stores a new key with ActivatesAt = now+PublishDelay:
//     it is pending (published, not signing) for PublishDelay, long enough
//     for every replica to reload it (RefreshInterval) and every relying
//     party to refetch the JWKS (its cache lifetime) before the first token
//     it signs.
//   - [Manager.Load] creates a key that signs at once for each configured
//     algorithm with no stored key: a fresh deployment has no tokens to
//     protect. If two replicas start on an empty database together, both
//     create one; the ordering rule picks the same signer everywhere after
//     their next reload, and the other key retires at once but stays
//     published for Retention.
//   - With RotationPeriod set, [Manager.Run] rotates an algorithm once its
//     newest key has been signing for RotationPeriod. If the store has
//     leases ([Leaser]) only one replica rotates at a time.
//
// [Manager.List] reports these states as pending, active, retired and
// expired.
//
// # Storage and encryption at rest
//
// Keys are generated in memory before any storage call. The public part is
// stored as public JWK JSON. The private part is the private JWK JSON sealed
// by a [Sealer] (AES-256-GCM, key derived with HKDF-SHA256 from the system
// secret and the purpose "signing-keys", AAD = kid), so the database alone
// does not reveal private keys, and a sealed key moved to another row does
// not open. Private keys are decrypted once, when a Manager first loads
// them, and then kept in memory; [Manager.SigningKey] and [Manager.JWKS]
// serve from an immutable in-memory snapshot without I/O or locks.
//
// Removing an algorithm from the configuration stops signing with it, but
// its newest key has no successor and so stays published until it is
// deleted from storage by hand.
package keys
