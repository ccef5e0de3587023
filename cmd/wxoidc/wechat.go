package main

import (
	"log/slog"
	"sort"

	"github.com/wxoidc/wxoidc/provider"
	"github.com/wxoidc/wxoidc/provider/weblogin"
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

// followConfigs returns the official accounts with message push, which
// follow-the-official-account login uses, in appid order.
func followConfigs(cfg Config) ([]weblogin.FollowConfig, error) {
	var out []weblogin.FollowConfig
	for _, a := range cfg.WeChat.Apps {
		if a.Kind != "official" || !a.Push.configured() {
			continue
		}
		token, err := a.Push.pushToken()
		if err != nil {
			return nil, err
		}
		key, err := a.Push.aesKey()
		if err != nil {
			return nil, err
		}
		prev, err := a.Push.previousAESKey()
		if err != nil {
			return nil, err
		}
		lifetime := a.FollowLogin.QRLifetime
		if lifetime == 0 {
			lifetime = defaultFollowQRLifetime
		}
		out = append(out, weblogin.FollowConfig{
			AppID: a.AppID, Token: token, Mode: a.Push.mode(), EncodingAESKey: key, PreviousEncodingAESKey: prev,
			Lifetime: lifetime, Reply: a.FollowLogin.Reply,
			ReplyExpired: a.FollowLogin.ReplyExpired, ReplyUsed: a.FollowLogin.ReplyUsed, ReplyNoAccount: a.FollowLogin.ReplyNoAccount,
			ReplyDisabled: a.FollowLogin.ReplyDisabled, ReplyClosed: a.FollowLogin.ReplyClosed,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AppID < out[j].AppID })
	return out, nil
}
