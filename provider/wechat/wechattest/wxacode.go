package wechattest

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/wxoidc/wxoidc/provider/wechat"
)

// WeChat's errcodes of getwxacodeunlimit (wechat-api.md §8.1).
const (
	codeInvalidScene       = 40129 // illegal characters in scene
	codeInvalidSceneLength = 40169 // scene too long, or the body is not a JSON string
	codeInvalidPage        = 41030 // page missing (not published, with check_path)
	codeInvalidArgs        = 40097 // e.g. bad env_version or width
)

// WXACode is a Mini Program code the simulator issued.
type WXACode struct {
	Scene string `json:"scene"`
	Page  string `json:"page"`
}

// sceneChars are the characters WeChat allows in a scene besides digits
// and letters.
const sceneChars = "!#$&'()*+,/:;=?@-._~"

// wxaCodeUnlimit serves POST /wxa/getwxacodeunlimit: a real PNG of a QR
// code whose text is "<page>?scene=<scene>", after WeChat's checks.
func (s *Server) wxaCodeUnlimit(w http.ResponseWriter, r *http.Request, path string) int {
	if r.Method != http.MethodPost {
		return wechat.CodeRequirePOST
	}
	s.mu.Lock()
	appID, errc := s.checkServerTokenLocked(r.URL.Query().Get("access_token"))
	s.mu.Unlock()
	if errc != 0 {
		return errc
	}
	if s.apps[appID].Kind != wechat.KindMiniProgram {
		return wechat.CodeUnauthorized
	}
	var req struct {
		Scene      *string `json:"scene"`
		Page       string  `json:"page"`
		CheckPath  *bool   `json:"check_path"`
		EnvVersion string  `json:"env_version"`
		Width      *int    `json:"width"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		return wechat.CodeDataFormat
	}
	if req.Scene == nil || *req.Scene == "" || len(*req.Scene) > 32 {
		return codeInvalidSceneLength
	}
	for _, c := range *req.Scene {
		if !(c < 128 && (c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.ContainsRune(sceneChars, c))) {
			return codeInvalidScene
		}
	}
	switch req.EnvVersion {
	case "", "release", "trial", "develop":
	default:
		return codeInvalidArgs
	}
	if req.Width != nil && (*req.Width < 280 || *req.Width > 1280) {
		return codeInvalidArgs
	}
	if strings.HasPrefix(req.Page, "/") || strings.ContainsAny(req.Page, "?#") {
		return codeInvalidPage
	}
	checkPath := req.CheckPath == nil || *req.CheckPath
	if pages := s.apps[appID].Pages; checkPath && req.Page != "" && len(pages) > 0 && !slices.Contains(pages, req.Page) {
		return codeInvalidPage
	}
	width := 430
	if req.Width != nil {
		width = *req.Width
	}
	png, err := qrcode.Encode(req.Page+"?scene="+*req.Scene, qrcode.Medium, width)
	if err != nil {
		return wechat.CodeBusy
	}
	s.mu.Lock()
	s.wxaCodes[appID] = append(s.wxaCodes[appID], WXACode{Scene: *req.Scene, Page: req.Page})
	s.mu.Unlock()
	w.Header().Set("Content-Type", "image/png")
	w.WriteHeader(http.StatusOK)
	w.Write(png)
	return 0
}

// WXACodes returns the Mini Program codes issued for appID, newest first.
func (s *Server) WXACodes(appID string) []WXACode {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.wxaCodes[appID])
	slices.Reverse(out)
	if out == nil {
		out = []WXACode{}
	}
	return out
}

// simWXACodes: GET /sim/wxacodes?appid= → {"codes": [{"scene", "page"}]},
// newest first.
func (s *Server) simWXACodes(w http.ResponseWriter, r *http.Request) {
	appID := r.URL.Query().Get("appid")
	if _, ok := s.apps[appID]; !ok {
		helperError(w, http.StatusBadRequest, "unknown appid")
		return
	}
	writeHelperJSON(w, http.StatusOK, map[string]any{"codes": s.WXACodes(appID)})
}
