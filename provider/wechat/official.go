package wechat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Paths of the official-account APIs of this file.
const (
	PathQRCodeCreate = "/cgi-bin/qrcode/create"
	PathShowQRCode   = "/cgi-bin/showqrcode"
	PathFollowerInfo = "/cgi-bin/user/info"
)

const (
	opQRCodeCreate = "qrcode_create"
	opFollowerInfo = "user_info"
)

// Parametric QR code actions (action_name).
const (
	QRActionScene         = "QR_SCENE"           // temporary, integer scene
	QRActionStrScene      = "QR_STR_SCENE"       // temporary, string scene
	QRActionLimitScene    = "QR_LIMIT_SCENE"     // permanent, integer scene
	QRActionLimitStrScene = "QR_LIMIT_STR_SCENE" // permanent, string scene
)

// Limits of parametric QR codes.
const (
	MaxQRSceneLength   = 64
	MaxQRExpireSeconds = 2592000 // 30 days
)

// QRCodeRequest is the JSON body of /cgi-bin/qrcode/create.
type QRCodeRequest struct {
	// ExpireSeconds is the lifetime of a temporary code; WeChat defaults
	// to 60 s when it is left out.
	ExpireSeconds int64        `json:"expire_seconds,omitempty"`
	ActionName    string       `json:"action_name"`
	ActionInfo    QRActionInfo `json:"action_info"`
}

// QRActionInfo carries the scene of a QR code.
type QRActionInfo struct {
	Scene QRSceneValue `json:"scene"`
}

// QRSceneValue is the scene: an integer for QR_SCENE and QR_LIMIT_SCENE, a
// string of 1–64 characters for the _STR_ actions.
type QRSceneValue struct {
	SceneID  int64  `json:"scene_id,omitempty"`
	SceneStr string `json:"scene_str,omitempty"`
}

// QRCode is the answer of /cgi-bin/qrcode/create. The same Ticket comes
// back in the scan events; URL is what the QR image encodes, so a caller
// may render the image itself instead of fetching showqrcode.
type QRCode struct {
	Ticket        string `json:"ticket"`
	ExpireSeconds int64  `json:"expire_seconds,omitempty"`
	URL           string `json:"url"`
}

// Follower is the answer of /cgi-bin/user/info: what an official account
// knows of one of its followers. Since the end of 2021 WeChat leaves
// nickname, avatar, sex and region empty; UnionID is set only when the
// account is bound to an Open Platform account. A person who does not
// follow the account has Subscribe 0 and nothing else but OpenID.
type Follower struct {
	Subscribe      int     `json:"subscribe"`
	OpenID         string  `json:"openid"`
	UnionID        string  `json:"unionid,omitempty"`
	Language       string  `json:"language,omitempty"`
	SubscribeTime  int64   `json:"subscribe_time,omitempty"`
	SubscribeScene string  `json:"subscribe_scene,omitempty"`
	QRScene        int64   `json:"qr_scene,omitempty"`
	QRSceneStr     string  `json:"qr_scene_str,omitempty"`
	Remark         string  `json:"remark,omitempty"`
	TagIDList      []int64 `json:"tagid_list"`
	// Emptied by WeChat since 2021, kept for the wire shape.
	Nickname   string `json:"nickname,omitempty"`
	HeadImgURL string `json:"headimgurl,omitempty"`
}

// CreateTempQRCode creates a temporary parametric QR code with a string
// scene (QR_STR_SCENE) that lives for lifetime (rounded up to whole
// seconds), via /cgi-bin/qrcode/create. Only verified service accounts
// may call it (48001 otherwise). It uses the server access token like
// [Client.PhoneNumber].
//
// https://developers.weixin.qq.com/doc/service/api/qrcode/qrcodes/api_createqrcode.html
func (c *Client) CreateTempQRCode(ctx context.Context, scene string, lifetime time.Duration) (*QRCode, error) {
	if scene == "" || len(scene) > MaxQRSceneLength {
		return nil, fmt.Errorf("wechat: qrcode/create: scene must be 1 to %d characters", MaxQRSceneLength)
	}
	secs := int64((lifetime + time.Second - 1) / time.Second)
	if secs < 1 || secs > MaxQRExpireSeconds {
		return nil, fmt.Errorf("wechat: qrcode/create: lifetime must be between 1s and %ds", MaxQRExpireSeconds)
	}
	return c.CreateQRCode(ctx, QRCodeRequest{
		ExpireSeconds: secs,
		ActionName:    QRActionStrScene,
		ActionInfo:    QRActionInfo{Scene: QRSceneValue{SceneStr: scene}},
	})
}

// CreateQRCode creates a parametric QR code as req says, via
// /cgi-bin/qrcode/create.
func (c *Client) CreateQRCode(ctx context.Context, req QRCodeRequest) (*QRCode, error) {
	return withServerToken(ctx, c, func(token string) (*QRCode, error) {
		var qr QRCode
		err := c.do(ctx, request{
			op:     opQRCodeCreate,
			method: http.MethodPost,
			path:   PathQRCodeCreate,
			query:  url.Values{"access_token": {token}},
			body:   req,
			// A second ticket for the same scene is harmless.
			idempotent: true,
		}, &qr)
		if err != nil {
			return nil, err
		}
		if qr.Ticket == "" || qr.URL == "" {
			return nil, malformed(opQRCodeCreate, "ticket or url missing")
		}
		return &qr, nil
	})
}

// ShowQRCodeURL returns the URL of the image of a ticket on WeChat's
// mp.weixin.qq.com (the ticket URL-encoded, as it must be).
func ShowQRCodeURL(mpBase, ticket string) string {
	if mpBase == "" {
		mpBase = "https://mp.weixin.qq.com"
	}
	return joinURL(mpBase, PathShowQRCode) + "?ticket=" + url.QueryEscape(ticket)
}

// Follower returns what the official account knows of openID, via
// /cgi-bin/user/info (lang zh_CN). An openid of another app is an
// [*APIError] with [CodeInvalidOpenID].
//
// https://developers.weixin.qq.com/doc/service/api/usermanage/userinfo/api_userinfo.html
func (c *Client) Follower(ctx context.Context, openID string) (*Follower, error) {
	if openID == "" {
		return nil, errors.New("wechat: user/info: empty openid")
	}
	return withServerToken(ctx, c, func(token string) (*Follower, error) {
		var f Follower
		err := c.do(ctx, request{
			op:         opFollowerInfo,
			method:     http.MethodGet,
			path:       PathFollowerInfo,
			query:      url.Values{"access_token": {token}, "openid": {openID}, "lang": {"zh_CN"}},
			idempotent: true,
		}, &f)
		if err != nil {
			return nil, err
		}
		if f.OpenID != openID {
			return nil, malformed(opFollowerInfo, "openid missing or not the one asked for")
		}
		return &f, nil
	})
}
