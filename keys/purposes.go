package keys

import (
	"crypto/hmac"
	"crypto/sha256"
)

// Purposes of the keys derived from the system secret: every one wxoidc
// uses is listed here, so that no two uses share a key and a reader sees
// them all in one place. A purpose is part of its key: changing one makes
// what was sealed, hashed or signed under it unreadable, so they never
// change once released.
const (
	// Sealers (NewSealer): secrets at rest.
	PurposeSigningKeys        = "signing-keys"         // private signing keys
	PurposeWeChatSessionKeys  = "wechat-session-keys"  // Mini Program session keys
	PurposeWeChatServerTokens = "wechat-server-tokens" // WeChat server access tokens
	PurposeRefreshGrace       = "refresh-grace"        // answers kept for the refresh reuse grace

	// DeriveKey.
	PurposeFositeHMAC    = "fosite-hmac"    // fosite's HMAC strategy (codes, opaque tokens)
	PurposeClientSecrets = "client-secrets" // keyed hash of client secrets
	// keyed hash of Dynamic Client Registration's initial and registration access tokens
	PurposeRegistrationTokens = "registration-tokens"

	// DeriveMAC.
	PurposeWebLoginCSRF      = "wxoidc weblogin csrf v1"      // CSRF tokens of the login forms
	PurposeWebLoginBinding   = "wxoidc weblogin binding v1"   // the browser-binding cookie
	PurposeFollowLoginScene  = "wxoidc follow-login scene v1" // MAC of a follow-login QR scene
	PurposeConsoleCookieSeal = "wxoidc console cookie seal"   // the admin console's cookies
	PurposeConsoleCSRF       = "wxoidc console csrf"          // the admin console's CSRF tokens
	PurposeConsoleAdminToken = "wxoidc console admin token"   // fingerprint of the admin token
)

// DeriveMAC derives a 32-byte key for purpose as HMAC-SHA256 of purpose
// under the system secret. It is how the login pages and the console
// derive their keys; new uses take DeriveKey (HKDF) instead.
func DeriveMAC(secret []byte, purpose string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
