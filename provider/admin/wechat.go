package admin

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/wxoidc/wxoidc/provider/ops"
	"github.com/wxoidc/wxoidc/storage"
)

const pathWeChat = "/admin/wechat"

// WeChatHealth is what GET /admin/wechat needs: the configured apps, where
// their server access tokens are kept, and this process's record of its
// calls to WeChat.
type WeChatHealth struct {
	// Apps are the configured WeChat apps.
	Apps []WeChatApp
	// Tokens holds the apps' shared server access tokens (only their
	// expiry is shown); nil shows none.
	Tokens interface {
		ServerToken(ctx context.Context, appID string) (storage.ServerToken, error)
	}
	// Log is this process's record of its calls to WeChat; nil shows none.
	Log *ops.WeChatLog
}

// WeChatApp is a configured WeChat app.
type WeChatApp struct {
	AppID string `json:"appid"`
	Kind  string `json:"kind"`
}

// wechatAppHealth is one app in the answer of GET /admin/wechat.
type wechatAppHealth struct {
	WeChatApp
	// ServerTokenExpiresAt is when the stored server access token expires
	// (absent: none is stored, e.g. before the first call that needs one).
	ServerTokenExpiresAt *time.Time `json:"server_token_expires_at,omitempty"`
	// Calls are this replica's calls since it started.
	Calls *ops.WeChatHealth `json:"calls,omitempty"`
}

// wechatHealth answers GET /admin/wechat: per configured app, the server
// token's expiry (shared by every replica) and this replica's recent
// failures (WeChat's errcodes). Never a token or a secret.
func (h *Handler) wechatHealth(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Apps []wechatAppHealth `json:"apps"`
	}{Apps: []wechatAppHealth{}}
	wh := h.cfg.WeChat
	if wh == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	for _, a := range wh.Apps {
		ah := wechatAppHealth{WeChatApp: a}
		if wh.Tokens != nil {
			t, err := wh.Tokens.ServerToken(r.Context(), a.AppID)
			switch {
			case err == nil:
				exp := t.ExpiresAt.UTC()
				ah.ServerTokenExpiresAt = &exp
			case !errors.Is(err, storage.ErrNotFound):
				h.serverError(w, r, "read server token", err)
				return
			}
		}
		if wh.Log != nil {
			c := wh.Log.Health(a.AppID)
			ah.Calls = &c
		}
		out.Apps = append(out.Apps, ah)
	}
	writeJSON(w, http.StatusOK, out)
}
