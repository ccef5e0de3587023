package wechat

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// WeChat errcodes this package and its callers act on. See
// https://developers.weixin.qq.com/doc/channels/API/basics/commErrCode.html
// and the per-API pages for their meaning.
const (
	CodeBusy                = -1    // system busy; retry later
	CodeOK                  = 0     // success
	CodeInvalidCredential   = 40001 // access token invalid or superseded (wrong secret on /cgi-bin/token)
	CodeInvalidGrantType    = 40002 // grant_type wrong
	CodeInvalidOpenID       = 40003 // openid malformed or not of this app
	CodeInvalidAppID        = 40013 // appid wrong
	CodeInvalidAccessToken  = 40014 // access token unparseable or of the wrong kind
	CodeInvalidCode         = 40029 // code invalid, expired, foreign or of the wrong kind
	CodeInvalidRefreshToken = 40030 // OAuth refresh token invalid
	CodeInvalidAppSecret    = 40125 // app secret wrong
	CodeInvalidActionName   = 40052 // qrcode/create: action_name unknown
	CodeInvalidActionInfo   = 40053 // qrcode/create: scene or expire_seconds out of range
	CodeCodeUsed            = 40163 // single-use code presented again
	CodeIPNotAllowed        = 40164 // caller IP not in the API IP whitelist
	CodeCodeBlocked         = 40226 // login refused for a high-risk user
	CodeAppSecretFrozen     = 40243 // app secret frozen in the admin console
	CodeAccessTokenMissing  = 41001 // access_token parameter missing
	CodeAppIDMissing        = 41002 // appid parameter missing
	CodeAppSecretMissing    = 41004 // secret parameter missing
	CodeCodeMissing         = 41008 // code parameter missing
	CodeAccessTokenExpired  = 42001 // access token past its expiry
	CodeRefreshTokenExpired = 42002 // OAuth refresh token past its 30 days
	CodeCodeExpired         = 42003 // OAuth code timed out
	CodePasswordChanged     = 42007 // user changed password; OAuth tokens revoked
	CodeRequirePOST         = 43002 // endpoint needs POST
	CodeDailyQuota          = 45009 // daily (or per-minute for some APIs) quota exhausted
	CodeMinuteQuota         = 45011 // per-minute rate limit
	CodeDataFormat          = 47001 // request body is not valid JSON
	CodeUnauthorized        = 48001 // API not authorized for this app or token
	CodeInvalidSigMethod    = 87008 // session signature method not hmac_sha256
	CodeInvalidSignature    = 87009 // session signature does not match the current session_key
	CodeIPConfirmPending    = 89501 // risky-IP confirmation pending with the admin
	CodeIPConfirmRequired   = 89503 // risky-IP confirmation required
	CodeIPRefusedTwice      = 89506 // admin refused the IP twice; blocked 24 h
	CodeIPRefusedOnce       = 89507 // admin refused the IP once; blocked 1 h
)

// Class sorts WeChat errors by who must act.
type Class int

// The error classes. Transport failures have their own class,
// [ClassUnavailable], so that [ClassOf] covers every error of this package.
const (
	// ClassOther is any error not in another class.
	ClassOther Class = iota
	// ClassInvalidCode: the code is invalid, expired, used or blocked
	// (40029, 40163, 40226, 42003). The caller's fault; do not retry.
	ClassInvalidCode
	// ClassRetryLater: WeChat is busy or rate-limits us (-1, 45009, 45011).
	ClassRetryLater
	// ClassMisconfigured: our appid, secret or IP whitelist is wrong
	// (40013, 40125, 40164, 40243, 41002, 41004, 8950x, and 40001 from a
	// token endpoint). An operator must act.
	ClassMisconfigured
	// ClassStaleToken: the server access token is stale (40001, 40014,
	// 42001). The client refreshes it and retries once by itself, so callers
	// only see this class when the retry failed too.
	ClassStaleToken
	// ClassUnavailable: WeChat could not be reached, timed out, answered
	// with an HTTP error or an unreadable body. The error wraps
	// [ErrUnavailable].
	ClassUnavailable
)

var classNames = [...]string{"other", "invalid_code", "retry_later", "misconfigured", "stale_token", "unavailable"}

// String returns the class name, e.g. "invalid_code".
func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return fmt.Sprintf("Class(%d)", int(c))
	}
	return classNames[c]
}

// APIError is an error answer from WeChat: an errcode other than 0. It is
// modelled on golang.org/x/oauth2's RetrieveError.
type APIError struct {
	// Code is WeChat's errcode. Branch on it (or on Class), never on Message.
	Code int
	// Message is WeChat's errmsg, including its request id ("rid: ...");
	// keep it for logs. It is trimmed and stripped of control characters.
	Message string
	// Op names the call that failed, e.g. "jscode2session" or "stable_token".
	Op string
	// StatusCode is the HTTP status of the answer (WeChat uses 200).
	StatusCode int
	// Body is the raw answer. Error answers carry only errcode and errmsg.
	Body []byte
}

// Error returns "wechat: errcode N: errmsg".
func (e *APIError) Error() string {
	return fmt.Sprintf("wechat: errcode %d: %s", e.Code, e.Message)
}

// Class classifies the error by its code (and, for 40001, by the call:
// 40001 from a token endpoint means a wrong app secret).
func (e *APIError) Class() Class {
	switch e.Code {
	case CodeInvalidCode, CodeCodeUsed, CodeCodeBlocked, CodeCodeExpired:
		return ClassInvalidCode
	case CodeBusy, CodeMinuteQuota, CodeDailyQuota:
		return ClassRetryLater
	case CodeInvalidAppID, CodeInvalidAppSecret, CodeIPNotAllowed, CodeAppSecretFrozen,
		CodeAppIDMissing, CodeAppSecretMissing,
		CodeIPConfirmPending, CodeIPConfirmRequired, CodeIPRefusedTwice, CodeIPRefusedOnce:
		return ClassMisconfigured
	case CodeInvalidCredential:
		if e.Op == opToken || e.Op == opStableToken {
			return ClassMisconfigured
		}
		return ClassStaleToken
	case CodeInvalidAccessToken, CodeAccessTokenExpired:
		return ClassStaleToken
	}
	return ClassOther
}

// ClassOf returns the class of err: the [APIError.Class] of a wrapped
// *APIError, [ClassUnavailable] for errors wrapping [ErrUnavailable], and
// [ClassOther] otherwise (including nil and context cancellation).
func ClassOf(err error) Class {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class()
	}
	if errors.Is(err, ErrUnavailable) {
		return ClassUnavailable
	}
	return ClassOther
}

// IsInvalidCode reports whether err says the code was invalid, expired,
// used or blocked.
func IsInvalidCode(err error) bool { return ClassOf(err) == ClassInvalidCode }

// IsRetryLater reports whether err says WeChat is busy or rate-limiting.
func IsRetryLater(err error) bool { return ClassOf(err) == ClassRetryLater }

// IsMisconfigured reports whether err says our appid, secret or IP is wrong.
func IsMisconfigured(err error) bool { return ClassOf(err) == ClassMisconfigured }

// IsStaleToken reports whether err says the server access token is stale.
func IsStaleToken(err error) bool { return ClassOf(err) == ClassStaleToken }

// IsTemporary reports whether a later retry may succeed: WeChat was busy,
// rate-limited or unreachable ([ClassRetryLater] or [ClassUnavailable]).
// Callers map it to 503 temporarily_unavailable.
func IsTemporary(err error) bool {
	c := ClassOf(err)
	return c == ClassRetryLater || c == ClassUnavailable
}

// Sentinel errors.
var (
	// ErrUnavailable is wrapped by every failure to get a usable answer from
	// WeChat: network errors, timeouts, HTTP statuses other than 2xx, and
	// bodies that are not the expected JSON. The underlying cause (e.g.
	// [context.DeadlineExceeded]) is wrapped too.
	ErrUnavailable = errors.New("wechat: unavailable")
	// ErrNoToken is returned by [TokenStore.LoadToken] when no token is stored.
	ErrNoToken = errors.New("wechat: no server token stored")
	// ErrMalformed reports encryptedData, iv or session key that are not
	// valid base64 of the right length.
	ErrMalformed = errors.New("wechat: malformed encrypted data")
	// ErrSessionKeyMismatch reports encryptedData that does not decrypt to
	// JSON with the given session key: bad PKCS#7 padding or garbage. The
	// usual cause is a session key that rotated (the client called wx.login
	// again) after the data was produced.
	ErrSessionKeyMismatch = errors.New("wechat: session key does not match the encrypted data (rotated?)")
	// ErrWatermarkMismatch reports decrypted data (or a phone number) whose
	// watermark appid is not ours.
	ErrWatermarkMismatch = errors.New("wechat: watermark appid mismatch")
)

// unavailableError wraps a transport-level failure. Its cause never carries
// a URL (see scrub).
type unavailableError struct {
	op  string
	err error
}

func (e *unavailableError) Error() string {
	return "wechat: " + e.op + ": unavailable: " + e.err.Error()
}

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// cleanMessage trims an errmsg to a loggable size and strips control
// characters.
func cleanMessage(s string) string {
	const max = 256
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > max {
		cut := max
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
