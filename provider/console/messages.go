package console

import (
	"github.com/wxoidc/wxoidc/provider"
)

// Page languages.
const (
	localeZH = provider.LocaleZH
	localeEN = provider.LocaleEN
)

// pickLocale picks the first supported language of Accept-Language by
// quality, else Chinese.
func pickLocale(acceptLanguage string) string { return provider.PageLocale("", acceptLanguage) }

func otherLocale(l string) string {
	if l == localeEN {
		return localeZH
	}
	return localeEN
}

// msg is the text of key in locale (the key itself when unknown, so a
// missing text shows up in screenshots and tests).
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

var messages = map[string][2]string{ // key → {zh-CN, en}
	"console":      {"wxoidc 管理控制台", "wxoidc console"},
	"langName":     {"中文", "English"},
	"switchTo":     {"English", "中文"},
	"nav.overview": {"概览", "Overview"},
	"nav.users":    {"用户", "Users"},
	"nav.apps":     {"应用", "Apps"},
	"nav.keys":     {"签名密钥", "Signing keys"},
	"nav.events":   {"审计日志", "Audit trail"},
	"signOut":      {"退出", "Sign out"},
	"readOnly":     {"只读", "read-only"},
	"breakGlass":   {"应急令牌登录", "break-glass sign-in"},
	"save":         {"保存", "Save"},
	"cancel":       {"取消", "Cancel"},
	"copy":         {"复制", "Copy"},
	"copied":       {"已复制", "Copied"},
	"yes":          {"是", "yes"},
	"no":           {"否", "no"},
	"none":         {"无", "none"},
	"more":         {"下一页", "Next page"},
	"back":         {"返回", "Back"},

	"login.title":     {"登录管理控制台", "Sign in to the console"},
	"login.wechat":    {"使用微信登录", "Sign in with WeChat"},
	"login.wechatOff": {"未配置 console.url，无法使用微信登录。", "Sign-in with WeChat is off: console.url is not set."},
	"login.roleNote":  {"仅限拥有 admin 或 viewer 角色的用户。", "Only users with the admin or viewer role get in."},
	"login.token":     {"应急登录：管理令牌", "Break-glass: the admin token"},
	"login.tokenHelp": {"admin.token 中配置的令牌。每次使用都会记录。", "The token set in admin.token. Every use is logged."},
	"login.tokenBtn":  {"使用令牌登录", "Sign in with the token"},
	"login.badToken":  {"令牌不正确。", "That is not the admin token."},
	"login.signedOut": {"你已退出管理控制台。", "You have signed out of the console."},
	"login.noWay":     {"没有可用的登录方式：请设置 console.url 或 admin.token。", "No way to sign in: set console.url or admin.token."},
	"continue.title":  {"正在进入控制台…", "Opening the console…"},
	"continue.link":   {"继续", "Continue"},

	"overview.title":        {"概览", "Overview"},
	"overview.apps":         {"应用", "Apps"},
	"overview.activeKeys":   {"有效签名密钥", "Active signing keys"},
	"overview.users":        {"用户", "Users"},
	"overview.signIns":      {"近 30 天每日登录（按方式）", "Sign-ins per day, last 30 days, by method"},
	"overview.newUsers":     {"近 30 天每日新用户", "New users per day, last 30 days"},
	"overview.total30":      {"30 天合计 %d", "%d in 30 days"},
	"overview.wechat":       {"微信接口状态", "WeChat upstream"},
	"overview.wechatNote":   {"调用次数和最近的错误码来自本实例启动以来的调用；服务端 access_token 由所有实例共享。", "Calls and recent errcodes are this replica's since it started; the server access token is shared by every replica."},
	"overview.token":        {"服务端 access_token", "Server access token"},
	"overview.tokenAge":     {"已获取 %d 分钟，%d 分钟后过期", "%d min old, expires in %d min"},
	"overview.tokenExpired": {"已过期", "expired"},
	"overview.noToken":      {"尚未获取", "none yet"},
	"overview.calls":        {"调用", "Calls"},
	"overview.failed":       {"%d 次失败", "%d failed"},
	"overview.failures":     {"最近的错误码", "Recent errcodes"},
	"overview.noApps":       {"未配置微信应用。", "No WeChat app is configured."},

	"apps.title":        {"应用", "Apps"},
	"apps.new":          {"新建应用", "New app"},
	"apps.empty":        {"还没有应用。", "No apps yet."},
	"apps.id":           {"client_id", "client_id"},
	"apps.name":         {"名称", "Name"},
	"apps.type":         {"类型", "Type"},
	"apps.grants":       {"授权方式", "Grants"},
	"apps.created":      {"创建时间", "Created"},
	"apps.public":       {"公开客户端", "public"},
	"apps.confidential": {"机密客户端", "confidential"},
	"apps.firstParty":   {"第一方", "first-party"},
	"apps.editTitle":    {"编辑应用", "Edit app"},
	"apps.newTitle":     {"新建应用", "New app"},
	"apps.idHelp":       {"留空则自动生成。创建后不可修改。", "Left empty, one is generated. It cannot change later."},
	"apps.auth":         {"客户端认证方式", "Client authentication"},
	"apps.authHelp":     {"none = 公开客户端（小程序、单页应用、原生应用），不发放密钥。", "none = a public client (Mini Program, single-page or native app) with no secret."},
	"apps.redirects":    {"回调地址（每行一个）", "Redirect URIs (one per line)"},
	"apps.logouts":      {"退出后回调地址（每行一个）", "Post-logout redirect URIs (one per line)"},
	"apps.scope":        {"可请求的 scope（空格分隔）", "Scopes it may ask for (space-separated)"},
	"apps.audience":     {"受众 audience（每行一个）", "Audience (one per line)"},
	"apps.alg":          {"ID 令牌签名算法", "ID token signing algorithm"},
	"apps.appid":        {"微信 appid", "WeChat appid"},
	"apps.appidNone":    {"不绑定", "none"},
	"apps.skipConsent":  {"第一方应用：不显示授权确认页", "First-party: no consent screen"},
	"apps.create":       {"创建", "Create"},
	"apps.secretTitle":  {"客户端密钥", "Client secret"},
	"apps.secretOnce":   {"请立即复制并妥善保存：此密钥只显示这一次，之后无法再次查看。", "Copy it now and keep it safe: this is the only time it is shown."},
	"apps.rotate":       {"重新生成密钥", "Rotate secret"},
	"apps.rotateHelp":   {"旧密钥立即失效。", "The old secret stops working at once."},
	"apps.delete":       {"删除应用", "Delete app"},
	"apps.deleteHelp":   {"删除后该应用无法再登录或换取令牌。输入 client_id 以确认：", "The app can no longer sign anyone in or get tokens. Type its client_id to confirm:"},
	"apps.deleted":      {"应用已删除。", "The app was deleted."},
	"apps.saved":        {"已保存。", "Saved."},
	"apps.created.ok":   {"应用已创建。", "The app was created."},
	"apps.confirmWrong": {"输入的 client_id 不一致，未删除。", "The client_id you typed does not match; nothing was deleted."},
	"apps.fixErrors":    {"请修正标出的字段。", "Please fix the marked field."},
	"apps.notFound":     {"没有这个应用。", "There is no such app."},
	"apps.back":         {"返回应用列表", "Back to the apps"},

	"keys.title":         {"签名密钥", "Signing keys"},
	"keys.kid":           {"kid", "kid"},
	"keys.alg":           {"算法", "Algorithm"},
	"keys.state":         {"状态", "State"},
	"keys.created":       {"创建", "Created"},
	"keys.activates":     {"开始签名", "Signs from"},
	"keys.retired":       {"停止签名", "Retired"},
	"keys.expires":       {"从 JWKS 移除", "Leaves the JWKS"},
	"keys.rotate":        {"轮换密钥", "Rotate keys"},
	"keys.rotateHelp":    {"新密钥立即发布到 JWKS，并在发布延迟后开始签名；旧密钥保留到其签发的令牌全部过期。", "The new key is published in the JWKS at once and signs after the publish delay; the old one stays until every token it signed has expired."},
	"keys.rotateAll":     {"全部算法", "every algorithm"},
	"keys.rotated":       {"已生成新密钥：%s", "New keys: %s"},
	"keys.state.pending": {"待启用", "pending"},
	"keys.state.active":  {"签名中", "active"},
	"keys.state.retired": {"已停用", "retired"},
	"keys.state.expired": {"已过期", "expired"},

	"users.title":           {"用户", "Users"},
	"users.searchBy":        {"查找方式", "Find by"},
	"users.by.phone_number": {"手机号", "phone number"},
	"users.by.openid":       {"openid", "openid"},
	"users.by.unionid":      {"unionid", "unionid"},
	"users.by.external_id":  {"外部 ID", "external id"},
	"users.by.q":            {"昵称或 sub 前缀", "name or sub prefix"},
	"users.search":          {"查找", "Search"},
	"users.none":            {"没有找到用户。", "No users found."},
	"users.sub":             {"sub", "sub"},
	"users.name":            {"昵称", "Name"},
	"users.phone":           {"手机号", "Phone number"},
	"users.externalID":      {"外部 ID", "External ID"},
	"users.roles":           {"角色", "Roles"},
	"users.status":          {"状态", "Status"},
	"users.active":          {"正常", "active"},
	"users.disabledState":   {"已停用", "disabled"},
	"users.created":         {"创建时间", "Created"},
	"users.lastLogin":       {"最近登录", "Last sign-in"},
	"users.verified":        {"已验证", "verified"},
	"users.identities":      {"微信身份（按应用）", "WeChat identities (per app)"},
	"users.noIdentities":    {"没有关联的微信身份。", "No linked WeChat identity."},
	"users.appid":           {"appid", "appid"},
	"users.kind":            {"类型", "Kind"},
	"users.unlink":          {"解除关联", "Unlink"},
	"users.consents":        {"已授权的应用", "Consents"},
	"users.noConsents":      {"没有授权记录。", "No consents."},
	"users.sessions":        {"登录会话", "Active sessions"},
	"users.noSessions":      {"没有活动的登录会话。", "No active sessions."},
	"users.events":          {"最近事件", "Recent events"},
	"users.allEvents":       {"全部事件", "All events"},
	"users.edit":            {"编辑资料", "Edit"},
	"users.save":            {"保存", "Save"},
	"users.saved":           {"已保存。", "Saved."},
	"users.actions":         {"操作", "Actions"},
	"users.disable":         {"停用账号", "Disable"},
	"users.disableHelp":     {"停用后不能再获取令牌，所有会话立即结束。", "A disabled user gets no tokens; every session ends at once."},
	"users.enable":          {"启用账号", "Enable"},
	"users.disabled":        {"账号已停用，所有会话已结束。", "The user is disabled; every session has ended."},
	"users.enabled":         {"账号已启用。", "The user is enabled."},
	"users.signout":         {"退出所有设备", "Sign out everywhere"},
	"users.signoutHelp":     {"结束所有浏览器会话，吊销全部令牌。", "Ends every browser session and revokes every token."},
	"users.signedOut":       {"已在所有设备退出。", "Signed out everywhere."},
	"users.unlinked":        {"已解除关联。", "The identity was unlinked."},
	"users.rolesTitle":      {"控制台角色", "Console roles"},
	"users.role.admin":      {"admin（可修改）", "admin (can change everything)"},
	"users.role.viewer":     {"viewer（只读）", "viewer (read-only)"},
	"users.rolesSave":       {"保存角色", "Save roles"},
	"users.rolesSaved":      {"角色已更新。", "Roles saved."},
	"users.delete":          {"删除用户", "Delete user"},
	"users.deleteHelp":      {"永久删除此用户及其微信身份、令牌、授权和会话；审计日志只保留 sub。输入用户的 sub 以确认：", "Erases the user with their WeChat identities, tokens, consents and sessions; the audit trail keeps only the sub. Type the user's sub to confirm:"},
	"users.deleted":         {"用户已删除。", "The user was deleted."},
	"users.confirmWrong":    {"输入的 sub 不一致，未删除。", "The sub you typed does not match; nothing was deleted."},
	"users.notFound":        {"没有这个用户（可能已被删除）。", "There is no such user (it may have been deleted)."},
	"users.back":            {"返回用户列表", "Back to the users"},

	"events.title":   {"审计日志", "Audit trail"},
	"events.type":    {"类型", "Type"},
	"events.anyType": {"全部类型", "any type"},
	"events.user":    {"用户 sub", "User (sub)"},
	"events.app":     {"应用 client_id", "App (client_id)"},
	"events.since":   {"从", "From"},
	"events.until":   {"到", "To"},
	"events.filter":  {"筛选", "Filter"},
	"events.clear":   {"清除", "Clear"},
	"events.time":    {"时间", "Time"},
	"events.ip":      {"IP", "IP"},
	"events.details": {"详情", "Details"},
	"events.none":    {"没有符合条件的事件。", "No events match."},
	"events.badDate": {"日期格式应为 YYYY-MM-DD。", "Dates are YYYY-MM-DD."},

	"errorTitle":       {"出错了", "Something went wrong"},
	"errNotFound":      {"页面不存在。", "There is no such page."},
	"errMethod":        {"不支持此请求方法。", "That request method is not allowed here."},
	"errCSRF":          {"表单已失效或并非来自本站，未执行任何操作。请返回刷新后重试。", "The form has expired or did not come from this console; nothing was changed. Go back, reload and try again."},
	"errForm":          {"请求格式错误。", "The request could not be read."},
	"errServer":        {"服务器出错，请查看服务器日志。", "Something went wrong on the server; see its log."},
	"errNoRole":        {"你的账号没有管理控制台的权限（需要 admin 或 viewer 角色），或已被停用。", "Your account may not use the console (it needs the admin or viewer role), or it is disabled."},
	"errReadOnly":      {"你的角色是只读（viewer），不能修改任何内容。", "Your role is read-only (viewer): you cannot change anything."},
	"errSignInExpired": {"登录已过期或不是在此浏览器中发起的，请重新登录。", "The sign-in expired or was started in another browser. Please sign in again."},
	"errSignInDenied":  {"登录已取消或被拒绝。", "The sign-in was cancelled or refused."},
	"errSignInFailed":  {"无法完成登录，请重试。", "The sign-in could not be completed. Please try again."},
	"toLogin":          {"返回登录", "Back to sign-in"},
}
