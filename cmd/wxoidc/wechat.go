package main

import (
	"log/slog"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/wechat"
	"github.com/wxoidc/wxoidc/storage"
)

// wechatApps builds a WeChat client per configured app, all sharing the
// storage-backed server-token store.
func wechatApps(cfg Config, s storage.Storage, secret []byte, holder string, log *slog.Logger) (map[string]provider.WeChatApp, error) {
	tokens, err := provider.NewTokenStore(s, secret, holder)
	if err != nil {
		return nil, err
	}
	apps := make(map[string]provider.WeChatApp, len(cfg.WeChat.Apps))
	for _, a := range cfg.WeChat.Apps {
		appSecret, err := a.secret()
		if err != nil {
			return nil, err
		}
		apps[a.AppID] = provider.WeChatApp{
			Kind: wechat.AppKind(a.Kind),
			Client: &wechat.Client{
				AppID:     a.AppID,
				AppSecret: appSecret,
				Endpoint:  wechat.Endpoint{APIURL: cfg.WeChat.APIBase, OpenURL: cfg.WeChat.OpenBase},
				Tokens:    tokens,
				Logger:    log.With("component", "wechat", "appid", a.AppID),
			},
		}
	}
	return apps, nil
}
