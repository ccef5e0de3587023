package weblogin

import (
	"embed"
	"html/template"
	"net/http"

	"github.com/wxoidc/wxoidc/provider"
)

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"t": func(locale, key string) string { return msg(locale, key) },
	"dict": func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	},
}).ParseFS(templateFS, "templates/*.html"))

// Supported page languages.
const (
	localeZH = provider.LocaleZH
	localeEN = provider.LocaleEN
)

// pickLocale chooses the page language (provider.PageLocale).
func pickLocale(uiLocales, acceptLanguage string) string {
	return provider.PageLocale(uiLocales, acceptLanguage)
}

var messages = map[string][2]string{ // key → {zh-CN, en}
	"lang":                 {"zh-CN", "en"},
	"consentTitle":         {"授权确认", "Allow access?"},
	"consentIntro":         {"%s 请求访问你的账号：", "%s wants to access your account:"},
	"signedInAs":           {"当前登录：", "Signed in as "},
	"allow":                {"同意", "Allow"},
	"deny":                 {"拒绝", "Deny"},
	"consentNote":          {"你的选择会被记住，可随时在“已授权的应用”中撤回。", "Your choice is remembered; you can withdraw it at any time under “Connected apps”."},
	"manage":               {"已授权的应用", "Connected apps"},
	"consentsTitle":        {"已授权的应用", "Connected apps"},
	"noConsents":           {"你还没有授权任何应用。", "You have not allowed any app yet."},
	"withdraw":             {"撤回授权", "Withdraw"},
	"grantedAt":            {"授权时间", "Allowed on"},
	"errorTitle":           {"无法登录", "Sign-in failed"},
	"tryAgain":             {"重新登录", "Try again"},
	"errNoState":           {"登录链接缺少必要参数。请回到应用重新登录。", "The sign-in link is incomplete. Go back to the app and sign in again."},
	"errStateExpired":      {"此登录链接已过期或已被使用。请回到应用重新登录。", "This sign-in link has expired or was already used. Go back to the app and sign in again."},
	"errOtherBrowser":      {"此登录不是在这个浏览器中发起的。请在同一浏览器中重新登录。", "This sign-in was started in another browser. Sign in again from this browser."},
	"errWeChat":            {"微信暂时无法完成登录，请重试。", "WeChat could not complete the sign-in. Please try again."},
	"errSnapshot":          {"你在微信的快照页模式中浏览，无法确认身份。请点击“使用完整服务”后重试。", "WeChat opened this page in snapshot mode, which does not reveal who you are. Open the full page in WeChat and try again."},
	"errOpenInWeChat":      {"请在微信客户端中打开此链接。", "Please open this link in WeChat."},
	"errDenied":            {"你已取消登录。", "You cancelled the sign-in."},
	"errCSRF":              {"表单已失效或并非来自本站。请返回重试。", "The form has expired or did not come from this site. Go back and try again."},
	"errForm":              {"请求格式错误。", "The request could not be read."},
	"errNotSignedIn":       {"你尚未登录。", "You are not signed in."},
	"errTooMany":           {"请求过于频繁，请稍后再试。", "Too many sign-in attempts from your network. Please wait a moment and try again."},
	"errDisabled":          {"你的账号已被停用，无法登录。如有疑问，请联系此服务的管理员。", "Your account is disabled, so you cannot sign in. If you think this is a mistake, contact the operator of this service."},
	"errNoAccount":         {"此服务仅限已有账号的用户登录，没有找到与你的微信对应的账号。请联系此服务的管理员开通账号。", "This service only lets existing accounts sign in, and no account matches your WeChat. Ask the operator of this service to create your account."},
	"backToApp":            {"返回应用", "Back to the app"},
	"deleteAccount":        {"注销账号", "Delete my account"},
	"deleteTitle":          {"注销账号", "Delete your account?"},
	"deleteIntro":          {"注销后，你的账号、已关联的微信身份、手机号、已授权的应用和所有登录状态将被永久删除，且无法恢复。", "Your account, the WeChat identities linked to it, your phone number, the apps you allowed and every sign-in will be erased for good. This cannot be undone."},
	"deleteNote":           {"之后用同一个微信登录，将会成为一个全新的账号。", "Signing in later with the same WeChat makes a new, separate account."},
	"deleteConfirm":        {"永久注销我的账号", "Delete my account for good"},
	"cancel":               {"取消", "Cancel"},
	"deletedTitle":         {"账号已注销", "Account deleted"},
	"deletedText":          {"你的账号及其数据已被删除。", "Your account and its data have been erased."},
	"errRecentSignIn":      {"为了保护你的账号，注销前需要在 %s内重新登录。请通过应用重新登录后再回到此页面。", "To protect your account, deleting it needs a sign-in within the last %s. Sign in again through an app, then come back to this page."},
	"errServer":            {"服务器出错，请稍后重试。", "Something went wrong on our side. Please try again later."},
	"loginTitle":           {"登录", "Sign in"},
	"loginIntro":           {"选择登录方式：", "Choose how to sign in:"},
	"methodQR":             {"微信扫码登录", "Sign in with WeChat QR code"},
	"methodQRHint":         {"用微信扫描网站二维码", "Scan the website's QR code with WeChat"},
	"methodScan":           {"小程序扫码登录", "Scan with the Mini Program"},
	"methodScanHint":       {"用微信扫描小程序码，在小程序中确认", "Scan a Mini Program code with WeChat and confirm in the Mini Program"},
	"methodOfficial":       {"关注公众号登录", "Follow the official account"},
	"methodOfficialHint":   {"用微信扫码关注公众号即可登录", "Scan with WeChat and follow the official account"},
	"waitTitle":            {"扫码登录", "Scan to sign in"},
	"scanAlt":              {"小程序码", "Mini Program code"},
	"scanInstructions":     {"请用微信扫描上方小程序码，并在小程序中确认登录。", "Scan the Mini Program code above with WeChat, then confirm the sign-in in the Mini Program."},
	"officialAlt":          {"公众号二维码", "Official account QR code"},
	"officialInstructions": {"请用微信扫描上方二维码，关注公众号即可登录；已关注的用户扫码即登录。", "Scan the QR code above with WeChat and follow the official account to sign in; if you already follow it, scanning signs you in."},
	"userCodeLabel":        {"确认码：", "Code: "},
	"waiting":              {"等待确认……确认后本页会自动继续。", "Waiting for confirmation… this page carries on by itself once you confirm."},
	"continue":             {"我已确认，继续", "I have confirmed, continue"},
	"otherMethod":          {"换一种登录方式", "Use another way to sign in"},
	"waitExpired":          {"二维码已过期。", "The code has expired."},
	"waitClosed":           {"扫码时这个登录页面已关闭，因此没有登录。请获取新的二维码后重新扫码。", "This login page was closed when the code was scanned, so nobody was signed in. Get a new code and scan it again."},
	"waitDenied":           {"登录已在手机上被拒绝。", "The sign-in was declined on the phone."},
	"freshCode":            {"获取新的二维码", "Get a new code"},
	"deviceTitle":          {"在设备上登录", "Sign in on a device"},
	"deviceEnter":          {"请输入设备上显示的确认码：", "Enter the code shown on your device:"},
	"deviceNext":           {"下一步", "Next"},
	"deviceTriesNote":      {"为了你的安全，每次输入的确认码都会被计数，尝试过多需稍后再试。", "For your security every code entered is counted; after too many tries you must wait."},
	"deviceTooMany":        {"尝试的确认码太多了。请等几分钟再试。", "Too many codes tried. Wait a few minutes and try again."},
	"deviceUnknown":        {"确认码不正确。请核对设备上显示的确认码。", "That code is not right. Check the code shown on your device."},
	"deviceExpired":        {"确认码已过期或已处理。请在设备上重新开始以获取新的确认码。", "That code has expired or was already used. Start again on your device for a new code."},
	"deviceApproved":       {"已完成。请回到你的设备继续。", "All set. Go back to your device to continue."},
	"deviceDenied":         {"已拒绝。设备不会被登录。", "Denied. The device will not be signed in."},
	"deviceConfirm":        {"%s 请求在设备上登录你的账号，并获得：", "%s asks to sign in to your account on a device, with:"},
	"deviceCheck":          {"请确认设备上显示的确认码与此相同：", "Check that your device shows this same code:"},
	"deviceScan":           {"用微信扫描小程序码，在小程序中确认：", "Scan the Mini Program code with WeChat and confirm in the Mini Program:"},
	"deviceSignIn":         {"或用微信登录后在此确认", "Or sign in with WeChat and confirm here"},
	"deviceSignInOnly":     {"用微信登录后确认", "Sign in with WeChat to confirm"},
	"approve":              {"确认登录", "Approve"},
	"scope.openid":         {"识别你的身份（一个固定的用户标识）", "Know who you are (a stable user ID)"},
	"scope.profile":        {"你的微信昵称和头像", "Your WeChat nickname and profile picture"},
	"scope.phone":          {"你的手机号码", "Your phone number"},
	"scope.wechat":         {"你的微信 openid 和 unionid", "Your WeChat openid and unionid"},
	"scope.offline_access": {"在你离开后继续访问你的账号", "Keep access to your account when you are away"},
}

func msg(locale, key string) string {
	m, ok := messages[key]
	if !ok {
		return key
	}
	if locale == localeEN {
		return m[1]
	}
	return m[0]
}

type scopeLine struct{ Scope, Text string }

func scopeLines(locale string, scopes []string) []scopeLine {
	out := make([]scopeLine, 0, len(scopes))
	for _, s := range scopes {
		text := msg(locale, "scope."+s)
		if text == "scope."+s {
			text = s
		}
		out = append(out, scopeLine{s, text})
	}
	return out
}

// render writes page name in locale. Pages are never cached or framed.
func (a *Authenticator) render(w http.ResponseWriter, status int, name, locale string, data map[string]any) {
	a.renderPage(w, status, name, locale, data, false)
}

// renderPage is render; withScript lets the page run the provider's own
// scripts and fetch from it (the waiting page's polling).
func (a *Authenticator) renderPage(w http.ResponseWriter, status int, name, locale string, data map[string]any, withScript bool) {
	if locale == "" {
		locale = localeZH
	}
	data["L"] = locale
	writePageHeader(w, status, locale, withScript)
	if err := pages.ExecuteTemplate(w, name, data); err != nil {
		a.log.Error("render page", "page", name, "error", err)
	}
}

// writePageHeader sends the header of a page in locale (renderPage).
func writePageHeader(w http.ResponseWriter, status int, locale string, withScript bool) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", locale)
	if withScript {
		provider.PageHeaders(h, "script-src 'self'", "connect-src 'self'")
	} else {
		provider.PageHeaders(h)
	}
	w.WriteHeader(status)
}

// errorPage shows message key, with a link to start again when retry is
// set.
func (a *Authenticator) errorPage(w http.ResponseWriter, r *http.Request, locale string, status int, key, retry string) {
	if locale == "" {
		locale = pickLocale(r.URL.Query().Get("ui_locales"), r.Header.Get("Accept-Language"))
	}
	a.render(w, status, "error", locale, map[string]any{"Message": msg(locale, key), "Code": key, "Retry": retry})
}

// serverError logs err (never secrets) and shows the generic error page.
func (a *Authenticator) serverError(w http.ResponseWriter, r *http.Request, locale, op string, err error) {
	a.log.ErrorContext(r.Context(), op, "error", err)
	a.errorPage(w, r, locale, http.StatusInternalServerError, "errServer", "")
}
