package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults of the Client's zero-valued fields.
const (
	DefaultTimeout      = 5 * time.Second
	DefaultMaxRetries   = 2
	DefaultRetryBackoff = 200 * time.Millisecond
)

// maxBody bounds the size of an answer we read.
const maxBody = 1 << 20

// Operation names used in APIError.Op and in log lines.
const (
	opJSCode2Session = "jscode2session"
	opToken          = "token"
	opStableToken    = "stable_token"
	opPhoneNumber    = "getuserphonenumber"
	opCheckSession   = "checksession"
	opWXACode        = "getwxacodeunlimit"
	opOAuthToken     = "oauth2_access_token"
	opOAuthRefresh   = "oauth2_refresh_token"
	opUserInfo       = "userinfo"
)

// Client calls WeChat's server APIs for one app. Configure it through its
// fields before first use and do not change them afterwards; a Client is
// then safe for concurrent use. A provider holds one Client per appid.
type Client struct {
	// AppID and AppSecret identify the app. AppSecret is never logged or
	// put in an error.
	AppID, AppSecret string
	// Endpoint holds the base URLs; zero fields mean [DefaultEndpoint].
	Endpoint Endpoint
	// HTTPClient sends the requests. Nil means a client of this package with
	// connection timeouts that does not follow redirects (never
	// http.DefaultClient).
	HTTPClient *http.Client
	// Timeout bounds each attempt of each call; 0 means [DefaultTimeout].
	Timeout time.Duration
	// MaxRetries is how many times a call answered with errcode -1 (or, for
	// idempotent calls, a transport failure) is retried; 0 means
	// [DefaultMaxRetries], a negative value disables retries. Code
	// exchanges are never retried after a transport failure, since the code
	// may already be used up.
	MaxRetries int
	// RetryBackoff is the first wait between retries, doubled on each retry
	// and jittered; 0 means [DefaultRetryBackoff].
	RetryBackoff time.Duration
	// Tokens keeps the server access token where every replica sees it. Nil
	// means a private in-memory store, which is correct only for a single
	// process with one Client per appid.
	Tokens TokenStore
	// UseClassicToken fetches the server access token from /cgi-bin/token
	// instead of /cgi-bin/stable_token. Every classic fetch invalidates the
	// previous token after 5 minutes, so all replicas MUST share Tokens
	// (with a [TokenLocker]) when this is set.
	UseClassicToken bool
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives warnings and token refreshes; nil discards them.
	Logger *slog.Logger
	// ObserveCall, when set, is called after every attempt of every API
	// call with the API's name (e.g. "jscode2session", "stable_token"), the
	// attempt's duration and its error (nil on success; an [*APIError]
	// carries WeChat's errcode). It is meant for metrics: it must be safe
	// for concurrent use and must not block.
	ObserveCall func(api string, d time.Duration, err error)
	// TraceCall, when set, is called as every attempt of every API call
	// starts, with the caller's context and the API's name, and returns the
	// function called with the attempt's error when it ends. It is meant
	// for tracing; same rules as ObserveCall. It never sees the request
	// URL, which carries the app secret.
	TraceCall func(ctx context.Context, api string) (done func(err error))
	// ObserveTokenRefresh, when set, is called after each fetch of a server
	// access token from WeChat (not when a stored token is reused), with
	// the fetch's error. Same rules as ObserveCall.
	ObserveTokenRefresh func(err error)

	initOnce sync.Once
	httpc    *http.Client // never nil after init
	log      *slog.Logger // never nil after init
	tokens   TokenStore   // never nil after init
	sf       singleflight.Group

	mu     sync.Mutex
	cached ServerToken // last token loaded or stored; guarded by mu
}

func (c *Client) init() {
	c.initOnce.Do(func() {
		c.httpc = c.HTTPClient
		if c.httpc == nil {
			c.httpc = newHTTPClient()
		}
		c.log = c.Logger
		if c.log == nil {
			c.log = slog.New(slog.DiscardHandler)
		}
		c.log = c.log.With("component", "wechat", "appid", c.AppID)
		c.tokens = c.Tokens
		if c.tokens == nil {
			c.tokens = NewMemoryTokenStore()
		}
	})
}

func newHTTPClient() *http.Client {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Client) maxRetries() int {
	switch {
	case c.MaxRetries < 0:
		return 0
	case c.MaxRetries == 0:
		return DefaultMaxRetries
	}
	return c.MaxRetries
}

func (c *Client) backoff(retry int) time.Duration {
	base := c.RetryBackoff
	if base <= 0 {
		base = DefaultRetryBackoff
	}
	d := base << (retry - 1)
	if d > 5*time.Second || d <= 0 {
		d = 5 * time.Second
	}
	// Jitter: somewhere in [d/2, d].
	return d/2 + rand.N(d/2+1)
}

// request describes one API call.
type request struct {
	op         string     // short name for errors and logs
	method     string     // GET or POST
	path       string     // appended to Endpoint.APIURL
	query      url.Values // may hold secrets: never printed
	body       any        // JSON body for POST, or nil
	idempotent bool       // transport failures may be retried
	// image, when set, takes a success answer that is an image (not
	// JSON) instead of decoding it into out.
	image *Image
}

// do runs r with retries and decodes a success answer into out.
func (c *Client) do(ctx context.Context, r request, out any) error {
	c.init()
	attempts := 1 + c.maxRetries()
	var err error
	for i := range attempts {
		if i > 0 {
			t := time.NewTimer(c.backoff(i))
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("wechat: %s: %w (after %w)", r.op, ctx.Err(), err)
			case <-t.C:
			}
		}
		start := c.now()
		var traced func(error)
		if c.TraceCall != nil {
			traced = c.TraceCall(ctx, r.op)
		}
		err = c.attempt(ctx, r, out)
		if traced != nil {
			traced(err)
		}
		if c.ObserveCall != nil {
			c.ObserveCall(r.op, c.now().Sub(start), err)
		}
		if err == nil || ctx.Err() != nil || !retryable(r, err) || i == attempts-1 {
			return err
		}
		c.log.Warn("wechat: retrying call", "op", r.op, "attempt", i+1, "errcode", errcodeOf(err), "class", ClassOf(err).String())
	}
	return err
}

func retryable(r request, err error) bool {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code == CodeBusy
	}
	return r.idempotent && errors.Is(err, ErrUnavailable)
}

func errcodeOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return 0
}

func (c *Client) attempt(ctx context.Context, r request, out any) error {
	actx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()

	u := joinURL(c.Endpoint.apiURL(), r.path)
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("wechat: %s: encode request: %w", r.op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(actx, r.method, u, body)
	if err != nil {
		return fmt.Errorf("wechat: %s: build request: %w", r.op, scrub(err))
	}
	req.Header.Set("Accept", "application/json, text/plain, */*")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("wechat: %s: %w", r.op, ctx.Err())
		}
		return &unavailableError{op: r.op, err: scrub(err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("wechat: %s: %w", r.op, ctx.Err())
		}
		return &unavailableError{op: r.op, err: fmt.Errorf("read answer: %w", scrub(err))}
	}
	if len(b) > maxBody {
		return &unavailableError{op: r.op, err: errors.New("answer too large")}
	}
	if r.image != nil && resp.StatusCode == http.StatusOK && isImage(b) {
		r.image.ContentType = http.DetectContentType(b)
		r.image.Data = b
		return nil
	}
	return decodeResponse(r.op, resp.StatusCode, b, out)
}

// isImage reports whether an answer is a PNG or JPEG rather than JSON:
// WeChat's content types are unreliable, so the first bytes decide
// (wechat-api.md §8.1).
func isImage(b []byte) bool {
	return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF})
}

// scrub removes the URL from a *url.Error, since WeChat's URLs carry the
// app secret and tokens in their query strings.
func scrub(err error) error {
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
		if err == nil {
			return errors.New(ue.Op + " failed")
		}
		if ue.Timeout() && !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
	}
	return err
}

var errMalformedAnswer = errors.New("malformed answer")

// decodeResponse decodes a WeChat answer: errcode first (absent means 0),
// then the success shape into out. It never panics, whatever body holds; it
// is the target of FuzzDecodeResponse.
func decodeResponse(op string, status int, body []byte, out any) error {
	var env struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	envErr := json.Unmarshal(body, &env)
	if envErr == nil && env.ErrCode != 0 {
		return &APIError{
			Code:       env.ErrCode,
			Message:    cleanMessage(env.ErrMsg),
			Op:         op,
			StatusCode: status,
			Body:       bytes.Clone(body),
		}
	}
	if status < 200 || status > 299 {
		return &unavailableError{op: op, err: fmt.Errorf("HTTP status %d", status)}
	}
	if envErr != nil {
		return &unavailableError{op: op, err: fmt.Errorf("%w: %w", errMalformedAnswer, jsonErr(envErr))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &unavailableError{op: op, err: fmt.Errorf("%w: %w", errMalformedAnswer, jsonErr(err))}
	}
	return nil
}

// jsonErr keeps the kind of a JSON error but not the offending value, which
// might be a secret.
func jsonErr(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Errorf("field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	return errors.New("invalid JSON")
}

func malformed(op, what string) error {
	return &unavailableError{op: op, err: fmt.Errorf("%w: %s", errMalformedAnswer, what)}
}

// Code2Session exchanges a Mini Program login code (from wx.login) for the
// user's openid, unionid and session key, via /sns/jscode2session. The code
// is single use: a transport failure is not retried (the code may already
// be spent), only errcode -1 is. Invalid, expired, used and blocked codes
// give an [*APIError] of [ClassInvalidCode].
//
// https://developers.weixin.qq.com/miniprogram/dev/server/API/user-login/api_code2session
func (c *Client) Code2Session(ctx context.Context, jsCode string) (*Session, error) {
	if jsCode == "" {
		return nil, errors.New("wechat: jscode2session: empty code")
	}
	var s Session
	err := c.do(ctx, request{
		op:     opJSCode2Session,
		method: http.MethodGet,
		path:   PathJSCode2Session,
		query: url.Values{
			"appid":      {c.AppID},
			"secret":     {c.AppSecret},
			"js_code":    {jsCode},
			"grant_type": {"authorization_code"},
		},
	}, &s)
	if err != nil {
		return nil, err
	}
	if s.OpenID == "" || s.SessionKey == "" {
		return nil, malformed(opJSCode2Session, "openid or session_key missing")
	}
	return &s, nil
}

// PhoneNumber exchanges a phone code (from the getPhoneNumber button; not a
// wx.login code) for the user's phone number, via getuserphonenumber. It
// uses the server access token; on 40001, 40014 or 42001 it invalidates the
// token and retries exactly once. The watermark appid must be ours, else
// the error wraps [ErrWatermarkMismatch].
//
// openID, the caller's openid in this app, is sent with the code so that
// WeChat redeems it only if it was issued to that user: a phone code taken
// from one person cannot bind their number to another. An empty openID
// sends the code alone (WeChat then checks nothing but the app). WeChat
// does not document the errcode of a mismatch; it is an [*APIError] like
// any other refusal.
//
// https://developers.weixin.qq.com/miniprogram/dev/server/API/user-info/phone-number/api_getphonenumber
func (c *Client) PhoneNumber(ctx context.Context, phoneCode, openID string) (*PhoneInfo, error) {
	if phoneCode == "" {
		return nil, errors.New("wechat: getuserphonenumber: empty code")
	}
	return withServerToken(ctx, c, func(token string) (*PhoneInfo, error) {
		var resp PhoneResponse
		err := c.do(ctx, request{
			op:     opPhoneNumber,
			method: http.MethodPost,
			path:   PathPhoneNumber,
			query:  url.Values{"access_token": {token}},
			body:   PhoneRequest{Code: phoneCode, OpenID: openID},
		}, &resp)
		if err != nil {
			return nil, err
		}
		p := resp.PhoneInfo
		if p == nil || p.PhoneNumber == "" {
			return nil, malformed(opPhoneNumber, "phone_info missing")
		}
		if p.Watermark.AppID != c.AppID {
			return nil, fmt.Errorf("wechat: getuserphonenumber: %w", ErrWatermarkMismatch)
		}
		return p, nil
	})
}

// CheckSession asks WeChat whether sessionKey is still the current session
// key of the Mini Program user openID, via /wxa/checksession. It returns nil
// if so, and an [*APIError] with [CodeInvalidSignature] (87009) if the key
// is stale or wrong. It uses the server access token like
// [Client.PhoneNumber].
//
// https://developers.weixin.qq.com/miniprogram/dev/server/API/user-login/api_checksessionkey
func (c *Client) CheckSession(ctx context.Context, openID, sessionKey string) error {
	_, err := withServerToken(ctx, c, func(token string) (struct{}, error) {
		var st Status
		return struct{}{}, c.do(ctx, request{
			op:     opCheckSession,
			method: http.MethodGet,
			path:   PathCheckSession,
			query: url.Values{
				"access_token": {token},
				"openid":       {openID},
				"signature":    {SessionSignature(sessionKey, "")},
				"sig_method":   {"hmac_sha256"},
			},
			idempotent: true,
		}, &st)
	})
	return err
}

// WXACodeUnlimit fetches a Mini Program code that opens req.Page with
// req.Scene, via /wxa/getwxacodeunlimit, using the server access token like
// [Client.PhoneNumber]. WeChat answers an image (JPEG; the simulator, PNG)
// or a JSON error: 40129 for a scene with illegal characters, 40169 for a
// bad length, 41030 for an unknown or unpublished page, 45009 over the
// rate limit. Codes are permanent, so callers should cache them.
//
// https://developers.weixin.qq.com/miniprogram/dev/server/API/qrcode-link/qr-code/api_getunlimitedqrcode
func (c *Client) WXACodeUnlimit(ctx context.Context, req WXACodeRequest) (*Image, error) {
	if req.Scene == "" {
		return nil, errors.New("wechat: getwxacodeunlimit: empty scene")
	}
	return withServerToken(ctx, c, func(token string) (*Image, error) {
		img := &Image{}
		err := c.do(ctx, request{
			op:         opWXACode,
			method:     http.MethodPost,
			path:       PathWXACodeUnlimit,
			query:      url.Values{"access_token": {token}},
			body:       req,
			idempotent: true, // the same scene and page give the same code
			image:      img,
		}, nil)
		if err != nil {
			return nil, err
		}
		if img.Data == nil {
			return nil, malformed(opWXACode, "no image")
		}
		return img, nil
	})
}

// AuthCodeURL returns the URL of WeChat's authorize page to send a browser
// to: /connect/oauth2/authorize for [KindOfficial] (scope snsapi_base or
// snsapi_userinfo, to be opened inside WeChat), and /connect/qrconnect (QR
// login, scope snsapi_login) for every other kind. An empty scope means
// snsapi_base for official accounts and snsapi_login otherwise. The
// parameters come in WeChat's documented order and the URL ends in
// #wechat_redirect, which WeChat requires.
func (c *Client) AuthCodeURL(kind AppKind, redirectURI, scope, state string) string {
	path := PathQRConnect
	if kind == KindOfficial {
		path = PathOAuth2Authorize
		if scope == "" {
			scope = ScopeBase
		}
	} else if scope == "" {
		scope = ScopeLogin
	}
	var b strings.Builder
	b.WriteString(joinURL(c.Endpoint.openURL(), path))
	b.WriteString("?appid=")
	b.WriteString(url.QueryEscape(c.AppID))
	b.WriteString("&redirect_uri=")
	b.WriteString(url.QueryEscape(redirectURI))
	b.WriteString("&response_type=code&scope=")
	b.WriteString(url.QueryEscape(scope))
	b.WriteString("&state=")
	b.WriteString(url.QueryEscape(state))
	b.WriteString("#wechat_redirect")
	return b.String()
}

// Exchange trades the code from an authorize page's redirect for a user
// OAuth token, via /sns/oauth2/access_token. Like [Client.Code2Session] it
// retries only errcode -1.
//
// https://developers.weixin.qq.com/doc/oplatform/Website_App/WeChat_Login/Authorized_Interface_Calling_UnionID.html
func (c *Client) Exchange(ctx context.Context, code string) (*OAuthToken, error) {
	if code == "" {
		return nil, errors.New("wechat: oauth2 access_token: empty code")
	}
	return c.oauthToken(ctx, request{
		op:     opOAuthToken,
		method: http.MethodGet,
		path:   PathOAuthAccessToken,
		query: url.Values{
			"appid":      {c.AppID},
			"secret":     {c.AppSecret},
			"code":       {code},
			"grant_type": {"authorization_code"},
		},
	})
}

// Refresh renews a user OAuth token with its refresh token, via
// /sns/oauth2/refresh_token.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*OAuthToken, error) {
	return c.oauthToken(ctx, request{
		op:     opOAuthRefresh,
		method: http.MethodGet,
		path:   PathOAuthRefreshToken,
		query: url.Values{
			"appid":         {c.AppID},
			"grant_type":    {"refresh_token"},
			"refresh_token": {refreshToken},
		},
		idempotent: true,
	})
}

func (c *Client) oauthToken(ctx context.Context, r request) (*OAuthToken, error) {
	start := c.now()
	var t OAuthToken
	if err := c.do(ctx, r, &t); err != nil {
		return nil, err
	}
	if t.AccessToken == "" || t.OpenID == "" {
		return nil, malformed(r.op, "access_token or openid missing")
	}
	t.Expiry = start.Add(time.Duration(t.ExpiresIn) * time.Second)
	return &t, nil
}

// UserInfo fetches the profile of tok's user via /sns/userinfo. A token of
// scope snsapi_base gives an [*APIError] with [CodeUnauthorized] (48001).
func (c *Client) UserInfo(ctx context.Context, tok *OAuthToken) (*UserInfo, error) {
	if tok == nil || tok.AccessToken == "" {
		return nil, errors.New("wechat: userinfo: no token")
	}
	var u UserInfo
	err := c.do(ctx, request{
		op:     opUserInfo,
		method: http.MethodGet,
		path:   PathUserInfo,
		query: url.Values{
			"access_token": {tok.AccessToken},
			"openid":       {tok.OpenID},
		},
		idempotent: true,
	}, &u)
	if err != nil {
		return nil, err
	}
	if u.OpenID == "" {
		return nil, malformed(opUserInfo, "openid missing")
	}
	return &u, nil
}
