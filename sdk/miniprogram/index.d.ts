// Type declarations for wxoidc-miniprogram.

/** The stored token record. */
export interface Tokens {
  access_token: string
  token_type: string
  refresh_token?: string
  id_token?: string
  scope?: string
  /** When the access token expires, in milliseconds since the epoch (by the client's clock). */
  expires_at: number
}

/** Where tokens are kept; the default wraps wx.getStorageSync / wx.setStorageSync / wx.removeStorageSync. */
export interface TokenStorage {
  get(key: string): Tokens | null
  set(key: string, value: Tokens): void
  remove(key: string): void
}

/** The parts of the Mini Program `wx` object the SDK uses. */
export interface WxLike {
  login(options: { timeout?: number; success: (res: { code: string; errMsg?: string }) => void; fail: (err: { errMsg: string }) => void }): void
  request(options: WxRequestOptions & { success: (res: WxResponse) => void; fail: (err: { errMsg: string }) => void }): void
  getStorageSync(key: string): any
  setStorageSync(key: string, value: any): void
  removeStorageSync(key: string): void
}

export interface WxRequestOptions {
  url: string
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS'
  data?: string | object | ArrayBuffer
  header?: Record<string, string>
  dataType?: string
  responseType?: string
  timeout?: number
}

export interface WxResponse<T = any> {
  statusCode: number
  data: T
  header: Record<string, string>
  errMsg?: string
}

export interface ClientOptions {
  /** The issuer URL, e.g. https://id.example.com (add its host to the Mini Program's request domains). */
  issuer: string
  /** The Mini Program's client id at wxoidc. */
  clientId: string
  /** Scopes to ask for at sign-in; default "openid offline_access". Add "phone" to bind phone numbers. */
  scope?: string
  /** The API's audience (the `audience` token parameter); the client must be allowed it. */
  audience?: string
  /** The wx object; default the global `wx`. */
  wx?: WxLike
  /** Token storage; default wxStorage(wx). */
  storage?: TokenStorage
  /** Storage key; default "wxoidc.tokens". */
  storageKey?: string
  /** Refresh this many seconds before the access token expires; default 60. */
  refreshMargin?: number
  /** Wait and retry a 429/503 whose Retry-After is at most this many seconds; default 10. */
  maxRetryAfter?: number
  /** How many times a 429/503 is retried; default 1. */
  retries?: number
  /** Sign in with wx.login() by itself when there are no usable tokens; default true. */
  autoSignIn?: boolean
  /** wx.request / wx.login timeout in milliseconds; default 10000. */
  timeout?: number
  /** The clock, in milliseconds; default Date.now. */
  now?: () => number
  /** Called with every new token record (after sign-in and refresh). */
  onTokens?: (tokens: Tokens) => void
}

/** An OAuth error from wxoidc (RFC 6749 §5.2, RFC 6750 §3.1) or a transport failure. */
export class WxoidcError extends Error {
  /** invalid_grant, invalid_request, temporarily_unavailable, insufficient_scope, login_required, …, or network_error, not_signed_in, login_failed. */
  code: string
  description: string
  /** HTTP status; 0 when no answer came. */
  status: number
  /** Seconds from Retry-After on 429/503. */
  retryAfter?: number
}

export class Client {
  constructor(options: ClientOptions)
  readonly issuer: string
  readonly clientId: string
  /** Signs in with wx.login() and the WeChat grant; phoneCode (from a getPhoneNumber button) binds the phone number. */
  signIn(options?: { phoneCode?: string; scope?: string }): Promise<Tokens>
  /** Revokes the refresh token (RFC 7009) and the access token, and forgets them (even when revocation fails). */
  signOut(): Promise<{ revoked: boolean }>
  /** wx.request with the bearer token: refreshes ahead of expiry (one refresh in flight), retries once after a refresh on 401, honours Retry-After on 429/503. */
  request<T = any>(options: WxRequestOptions): Promise<WxResponse<T>>
  /** A valid access token, refreshing or signing in as needed. */
  getAccessToken(): Promise<string>
  /**
   * Erases the signed-in person's account (POST /account/delete) and forgets the stored tokens.
   * Needs a sign-in within users.account_delete_max_age (10 minutes by default): an older one
   * rejects with code "login_required" (status 403), or, with signInAgain, signs in with
   * wx.login() and tries once more. Rejects with "not_signed_in" without usable tokens (it never
   * signs in by itself otherwise), "invalid_token" (401) when the account is already gone.
   */
  deleteAccount(options?: { signInAgain?: boolean }): Promise<void>
  /** Binds a phone number (POST /wechat/phone; needs the phone scope). */
  bindPhone(phoneCode: string): Promise<{ phone_number: string; phone_number_verified: boolean }>
  /** The pending device or desktop login a user code or scanned scene names (GET /oauth2/device/verify). */
  getDeviceLogin(userCodeOrScene: string): Promise<{ client_id: string; client_name: string; scope: string; user_code: string; kind: string; expires_in: number }>
  /** Approves it for the signed-in person (POST /oauth2/device/verify, action=approve). */
  approveDeviceLogin(userCodeOrScene: string): Promise<void>
  /** Denies it (POST /oauth2/device/verify, action=deny). */
  denyDeviceLogin(userCodeOrScene: string): Promise<void>
  /** The stored tokens, or null. */
  tokens(): Tokens | null
  isSignedIn(): boolean
  /** The ID token's claims, decoded but not verified: for display only. */
  claims(): ({ sub: string; [claim: string]: any }) | null
}

export function createClient(options: ClientOptions): Client
export function wxStorage(wx: WxLike): TokenStorage
export const GRANT_WECHAT: 'urn:wxoidc:params:oauth:grant-type:wechat-jscode'
