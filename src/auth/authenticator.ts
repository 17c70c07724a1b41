// Who is calling and may they: the bearer credential of a request checked as an API key or a JWT, its scope, its rate.
import {Counter, type Registry} from 'prom-client'

import {headerValue, pathOf} from '../http/server.js'
import {HttpError} from '../serve/errors.js'
import type {AuthSettings, Scope} from './config.js'
import {JwtVerifier} from './jwt.js'
import {KeyVerifier} from './keys.js'
import {RateLimiter} from './rate.js'

export interface Caller {
  /** The key's name or the token's subject: never the secret. */
  name: string
  kind: 'key' | 'jwt'
}

/** The header the gateway names the caller in towards its model servers (which trust it only when told to). */
export const CALLER_HEADER = 'x-mlops-caller'
/**
 * The header the gateway proves itself with to its model servers: they listen on 127.0.0.1 without auth, and would
 * otherwise take predictions, and a caller's name, from any local process.
 */
export const GATEWAY_TOKEN_HEADER = 'x-mlops-gateway-token'

/** One token of `caller`'s bucket: 0 when allowed, else the seconds until one is there. */
export type TakeToken = (caller: string, perSecond: number, burst: number) => number | Promise<number>

function localBuckets(): TakeToken {
  const limiter = new RateLimiter()
  return (caller, perSecond, burst) => limiter.take(caller, perSecond, burst)
}

const HEALTH = /^\/v2\/health\/(?:live|ready)$|^\/v2\/models\/[^/]+(?:\/versions\/[^/]+)?\/ready$/
const DOCS = /^\/(?:openapi\.json|docs(?:\/[\w.-]*)?)$/

/** The scope a request needs, or undefined for an open route (health and the API docs, and /metrics when so set). */
export function scopeFor(path: string, settings: AuthSettings): Scope | undefined {
  if (path === '/metrics') return settings.openMetrics ? undefined : 'metrics'
  // A browser cannot send a bearer credential with the page it opens: /docs asks for one (Authorize) to try requests.
  if (settings.openDocs && DOCS.test(path)) return undefined
  if (path === '/v1/feedback') return 'feedback'
  if (settings.openHealth && HEALTH.test(path)) return undefined
  return 'predict'
}

export class Authenticator {
  private readonly keys?: KeyVerifier
  private readonly jwt?: JwtVerifier
  private callers?: Counter<'caller'>

  /** `takeToken` counts callers' requests: this process's own buckets, or the primary's when serving workers share a port. */
  constructor(
    readonly settings: AuthSettings,
    private readonly takeToken: TakeToken = localBuckets(),
  ) {
    if (settings.mode === 'keys' || settings.mode === 'keys_or_jwt') this.keys = new KeyVerifier(settings.keysFile)
    if (settings.mode === 'jwt' || settings.mode === 'keys_or_jwt') {
      if (!settings.jwt) throw new Error('serving.auth.jwt needs jwks_url and audience')
      this.jwt = new JwtVerifier(settings.jwt)
    }
  }

  get enabled(): boolean {
    return this.settings.mode !== 'none'
  }

  async start(): Promise<void> {
    await this.keys?.start()
  }

  close(): void {
    this.keys?.close()
  }

  /** Requests by caller: key names are few and known, so they are labels; every token subject counts under "jwt". */
  registerMetrics(registry: Registry): void {
    this.callers = new Counter({
      name: 'mlops_caller_requests_total',
      help: 'Authenticated requests by API key name (token holders together as "jwt").',
      labelNames: ['caller'],
      registers: [registry],
    })
  }

  /**
   * The caller of a request that needs `scope`; throws the HttpError to answer (401 missing or invalid, 403 scope not
   * granted, 429 past the rate). Undefined for an open route or with auth off.
   */
  async authorize(method: string, url: string, headers: string[]): Promise<Caller | undefined> {
    if (!this.enabled) return undefined
    const scope = scopeFor(pathOf(url), this.settings)
    if (!scope || method === 'OPTIONS') return undefined
    const header = headerValue(headers, 'authorization')
    const match = header === undefined ? undefined : /^Bearer +([\x21-\x7e]{1,8192})$/i.exec(header)
    if (!match)
      throw unauthorized(
        header === undefined
          ? 'this endpoint needs credentials: send "Authorization: Bearer <key or token>"'
          : 'the Authorization header must be "Bearer <key or token>"',
        header !== undefined,
      )
    const credential = match[1]
    let caller: Caller
    let scopes: Scope[]
    let perSecond = this.settings.rateLimit?.perSecond
    const looksLikeJwt = credential.split('.').length === 3
    if (this.jwt && (looksLikeJwt || !this.keys)) {
      const token = await this.jwt.verify(credential)
      if ('problem' in token) throw unauthorized(token.problem, true)
      caller = {name: token.subject, kind: 'jwt'}
      scopes = token.scopes
    } else {
      const key = await this.keys!.verify(credential)
      if (!key) throw unauthorized('the API key is not valid (unknown or revoked)', true)
      caller = {name: key.name, kind: 'key'}
      scopes = key.scopes
      perSecond = key.ratePerSecond ?? perSecond
    }
    if (!scopes.includes(scope))
      throw new HttpError(403, 'FORBIDDEN', `${caller.name} is not granted the "${scope}" scope`, undefined, {
        'www-authenticate': `Bearer realm="mlops", error="insufficient_scope", scope="${scope}"`,
      })
    if (perSecond) {
      const burst = this.settings.rateLimit?.burst ?? Math.max(1, Math.ceil(perSecond))
      const wait = await this.takeToken(`${caller.kind}:${caller.name}`, perSecond, Math.max(burst, 1))
      if (wait > 0)
        throw new HttpError(
          429,
          'RATE_LIMITED',
          `${caller.name} is over its rate of ${perSecond} requests per second`,
          undefined,
          {'retry-after': String(Math.max(1, Math.ceil(wait)))},
        )
    }
    this.callers?.inc({caller: caller.kind === 'key' ? caller.name : 'jwt'})
    return caller
  }
}

function unauthorized(message: string, invalid: boolean): HttpError {
  // The description says what is wrong in words; it never repeats the credential.
  const challenge = invalid
    ? `Bearer realm="mlops", error="invalid_token", error_description="${message.replaceAll('"', "'")}"`
    : 'Bearer realm="mlops"'
  return new HttpError(401, 'UNAUTHORIZED', message, undefined, {'www-authenticate': challenge})
}
