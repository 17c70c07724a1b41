// The `serving.auth` section of mlops.yaml (typed by schemas/config/serving.schema.json) and the settings servers check callers with.
import {resolve} from 'node:path'

import type {ConfigIssue} from '../errors.js'

export type AuthMode = 'keys' | 'jwt' | 'keys_or_jwt' | 'none'
export const AUTH_MODES: readonly AuthMode[] = ['keys', 'jwt', 'keys_or_jwt', 'none']

export type Scope = 'predict' | 'feedback' | 'metrics'
export const SCOPES: readonly Scope[] = ['predict', 'feedback', 'metrics']

export interface AuthConfig {
  mode?: AuthMode
  /** API keys made by `mlops keys create`, relative to the project. Default .mlops/keys.json. */
  keys_file?: string
  jwt?: {
    jwks_url?: string
    issuer?: string
    audience?: string | string[]
    clock_skew_seconds?: number
    /** Scopes of a token that carries no `scope` (or `scp`) claim. Default [predict]. */
    default_scopes?: Scope[]
  }
  /** /metrics without credentials (default false: it needs the metrics scope). */
  open_metrics?: boolean
  /** Health and readiness without credentials (default true: load balancers and orchestrators probe them). */
  open_health?: boolean
  /** /openapi.json and /docs without credentials (default true: the page asks for a key to send requests). */
  open_docs?: boolean
  /** Requests per second per caller (a token bucket of `burst`); a key's own limit wins. */
  rate_limit?: {per_second: number; burst?: number}
}

export interface JwtSettings {
  jwksUrl: string
  issuer?: string
  audience: string | string[]
  clockSkewSeconds: number
  defaultScopes: Scope[]
}

export interface AuthSettings {
  mode: AuthMode
  keysFile: string
  jwt?: JwtSettings
  openMetrics: boolean
  openHealth: boolean
  openDocs: boolean
  rateLimit?: {perSecond: number; burst: number}
}

export const DEFAULT_KEYS_FILE = '.mlops/keys.json'

/** `serving.auth` is a mode (`auth: keys`) or a section with one. */
export function authConfigOf(value: AuthMode | AuthConfig | undefined): AuthConfig {
  return typeof value === 'string' ? {mode: value} : (value ?? {})
}

export function authSettings(
  value: AuthMode | AuthConfig | undefined,
  projectDir: string,
  modeOverride?: AuthMode,
): AuthSettings {
  const config = authConfigOf(value)
  const mode = modeOverride ?? config.mode ?? 'none'
  const jwt = config.jwt
  const rate = config.rate_limit
  return {
    mode,
    keysFile: resolve(projectDir, config.keys_file ?? DEFAULT_KEYS_FILE),
    jwt:
      jwt?.jwks_url && jwt.audience !== undefined
        ? {
            jwksUrl: jwt.jwks_url,
            issuer: jwt.issuer,
            audience: jwt.audience,
            clockSkewSeconds: jwt.clock_skew_seconds ?? 60,
            defaultScopes: jwt.default_scopes ?? ['predict'],
          }
        : undefined,
    openMetrics: config.open_metrics ?? false,
    openHealth: config.open_health ?? true,
    openDocs: config.open_docs ?? true,
    rateLimit: rate
      ? {perSecond: rate.per_second, burst: rate.burst ?? Math.max(1, Math.ceil(rate.per_second))}
      : undefined,
  }
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** What the schema cannot say: JWT needs an issuer's key set and an audience, fetched over https off this machine. */
export function checkAuthConfig(config: {serving?: {auth?: AuthMode | AuthConfig}}): ConfigIssue[] {
  const auth = authConfigOf(config.serving?.auth)
  const issues: ConfigIssue[] = []
  const jwt = auth.jwt
  if (auth.mode === 'jwt' || auth.mode === 'keys_or_jwt') {
    if (!jwt?.jwks_url)
      issues.push({path: 'serving.auth.jwt.jwks_url', message: `is required when serving.auth.mode is ${auth.mode}`})
    if (jwt?.audience === undefined)
      issues.push({path: 'serving.auth.jwt.audience', message: `is required when serving.auth.mode is ${auth.mode}`})
  }
  if (jwt?.jwks_url) issues.push(...checkJwksUrl(jwt.jwks_url, 'serving.auth.jwt.jwks_url'))
  return issues
}

export function checkJwksUrl(value: string, path: string): ConfigIssue[] {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return [{path, message: `"${value}" is not a URL`}]
  }
  if (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname))) return []
  return [{path, message: 'must be an https URL (plain http only on 127.0.0.1 or localhost)'}]
}
