// Type-checked with tsc --noEmit against ../../index.d.ts (package.json
// "types"): what a TypeScript Mini Program writes with the SDK. Lines
// marked ts-expect-error are misuses the declarations must refuse.
import { createClient, Client, WxoidcError, wxStorage, GRANT_WECHAT, Tokens, TokenStorage, WxLike, WxResponse } from '../..'

declare const wx: WxLike

const memory = new Map<string, Tokens>()
const storage: TokenStorage = {
  get: (key) => memory.get(key) ?? null,
  set: (key, value) => { memory.set(key, value) },
  remove: (key) => { memory.delete(key) },
}

const auth: Client = createClient({
  issuer: 'https://id.example.com',
  clientId: 'shop-miniprogram',
  scope: 'openid offline_access phone',
  audience: 'https://api.example.com',
  wx,
  storage,
  refreshMargin: 60,
  onTokens: (t: Tokens) => { const at: string = t.access_token; void at },
})
const other = new Client({ issuer: 'https://id.example.com', clientId: 'x', wx, storage: wxStorage(wx) })
const grant: 'urn:wxoidc:params:oauth:grant-type:wechat-jscode' = GRANT_WECHAT

interface Order { id: string; total: number }

async function use (): Promise<void> {
  const t: Tokens = await auth.signIn({ phoneCode: 'code-from-button' })
  const expires: number = t.expires_at
  const res: WxResponse<Order[]> = await auth.request<Order[]>({ url: 'https://api.example.com/orders', method: 'GET' })
  if (res.statusCode === 200) res.data.forEach((o) => o.total.toFixed(2))
  const token: string = await auth.getAccessToken()
  const phone: { phone_number: string; phone_number_verified: boolean } = await auth.bindPhone('code')
  const login = await auth.getDeviceLogin('BCDF-GHJK')
  const name: string = login.client_name
  await auth.approveDeviceLogin(login.user_code)
  await auth.denyDeviceLogin('scene')
  const sub: string | undefined = auth.claims()?.sub
  const stored: Tokens | null = auth.tokens()
  const signedIn: boolean = other.isSignedIn()
  const out: { revoked: boolean } = await auth.signOut()
  void [expires, token, phone, name, sub, stored, signedIn, out, grant]

  // Deleting the account: void on success; errors are WxoidcErrors.
  const done: void = await auth.deleteAccount()
  await auth.deleteAccount({ signInAgain: true })
  try {
    await auth.deleteAccount()
  } catch (e) {
    if (e instanceof WxoidcError && e.code === 'login_required') {
      const status: number = e.status
      const why: string = e.description
      const wait: number | undefined = e.retryAfter
      void [status, why, wait]
    }
  }
  void done

  // @ts-expect-error signInAgain is a boolean
  await auth.deleteAccount({ signInAgain: 'yes' })
  // @ts-expect-error no such option
  await auth.deleteAccount({ force: true })
  // @ts-expect-error issuer is required
  createClient({ clientId: 'x' })
  // @ts-expect-error the token record's access token is a string
  const n: number = (await auth.signIn()).access_token
  void n
}
void use
