// A small OCI distribution client over undici: every answer bounded in size and time, auth as container tools do it.
//
// Written by hand: the npm registry clients are unmaintained Docker v2 clients that know neither OCI artifacts nor
// chunked, resumable uploads; the part of the distribution API this needs is a handful of requests.
import {createHash} from 'node:crypto'
import {readdir, readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {rootCertificates} from 'node:tls'

import {Agent, type Dispatcher, request} from 'undici'

import {MlopsError, UsageError} from '../errors.js'
import {type Challenge, type Credentials, basicAuthorization, findCredentials, parseChallenge} from './auth.js'
import {isLoopback} from './reference.js'

export interface RegistryAccess {
  /** From --username and --password-stdin; otherwise the auth files and credential helpers are read. */
  credentials?: Credentials
  /** Verify the registry's TLS certificate (default true). */
  tlsVerify?: boolean
  /** A PEM file of CA certificates to trust besides the system ones. */
  caFile?: string
  /** Plain HTTP even for a registry that is not on this machine. */
  plainHttp?: boolean
  env?: NodeJS.ProcessEnv
  timeouts?: Partial<Timeouts>
  /** Attempts for a request that failed on the network or with 429/5xx (default 3). */
  attempts?: number
  retryDelayMs?: number
}

export interface Timeouts {
  connectMs: number
  /** Until the status line and headers have arrived. */
  headersMs: number
  /** The longest silence while a body streams in. */
  bodyIdleMs: number
  /** The whole exchange, for small answers (manifests, tokens, errors), so a trickling body cannot hold us. */
  smallMs: number
  /** Blobs and upload chunks get smallMs plus their size at this rate: the slowest link still worth waiting for. */
  minBytesPerSecond: number
}

const DEFAULT_TIMEOUTS: Timeouts = {
  connectMs: 15_000,
  headersMs: 30_000,
  bodyIdleMs: 30_000,
  smallMs: 60_000,
  minBytesPerSecond: 32 * 1024,
}
/** Manifests, tokens and error bodies: far above any real one, far below what would hurt. */
export const MAX_SMALL_BODY = 4 * 1024 * 1024
const MAX_ERROR_BODY = 64 * 1024
const MAX_REDIRECTS = 5
const TRANSIENT_STATUS = new Set([408, 429, 500, 502, 503, 504])
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_ABORTED',
  'ABORT_ERR',
  'UND_ERR_CLOSED',
])

export interface Answer {
  status: number
  headers: Record<string, string>
  body: Buffer
  url: string
}

interface Call {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH'
  /** A path under the registry (/v2/…) or an absolute URL it gave (an upload location). */
  url: string
  headers?: Record<string, string>
  body?: Buffer
  /** Retried on network errors and 429/5xx: everything but PATCH, whose retry is the resumable upload's. */
  idempotent?: boolean
  maxBody?: number
}

/** A network failure or a timeout, after the retries: worth trying again later. */
export class RegistryUnreachableError extends MlopsError {
  constructor(
    readonly registry: string,
    cause: unknown,
    attempts: number,
  ) {
    super(
      'REGISTRY_UNREACHABLE',
      `cannot reach the registry ${registry}: ${describeNetworkError(cause)} (${attempts} attempts)`,
      {
        hint: `Check the address and the network, then run the command again; a push resumes its upload where it stopped.`,
        cause,
      },
    )
  }
}

export class RegistryClient {
  readonly registry: string
  readonly repository: string
  private readonly access: RegistryAccess
  private readonly timeouts: Timeouts
  private readonly actions: string
  private dispatcher?: Promise<Dispatcher>
  private origin?: Promise<string>
  private authorization?: string
  private credentials?: Promise<Credentials | undefined>

  constructor(registry: string, repository: string, access: RegistryAccess = {}, push = false) {
    this.registry = registry
    this.repository = repository
    this.access = access
    this.timeouts = {...DEFAULT_TIMEOUTS, ...access.timeouts}
    this.actions = push ? 'pull,push' : 'pull'
  }

  async close(): Promise<void> {
    if (this.dispatcher) await (await this.dispatcher).close()
  }

  /** The exchange, after auth and retries; statuses outside `expect` become named errors. */
  async call(call: Call, expect: number[]): Promise<Answer> {
    const answer = await this.send(call)
    if (expect.includes(answer.status)) return answer
    throw this.failure(call, answer)
  }

  /** Like call, but 404 is an answer (undefined), as HEAD of a blob the registry does not have. */
  async probe(call: Call, expect: number[]): Promise<Answer | undefined> {
    const answer = await this.send(call)
    if (answer.status === 404) return undefined
    if (expect.includes(answer.status)) return answer
    throw this.failure(call, answer)
  }

  /**
   * Streams a GET's body to `sink` (following redirects to blob storage), refusing more than `maxBytes`. Returns the
   * sha256 and size of what arrived; the caller compares them with what it asked for.
   */
  async download(
    path: string,
    maxBytes: number,
    sink: (chunk: Buffer) => Promise<void>,
  ): Promise<{digest: string; size: number}> {
    let url = await this.resolve(path)
    const signal = AbortSignal.timeout(this.deadlineFor(maxBytes))
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const {statusCode, headers, body} = await this.retrying({method: 'GET', url, idempotent: true}, (u) =>
        this.rawStream(u, signal),
      )
      const flat = flatten(headers)
      if (statusCode >= 300 && statusCode < 400 && flat.location) {
        discard(body)
        url = this.checkRedirect(url, flat.location)
        continue
      }
      if (statusCode !== 200) {
        const answer = {
          status: statusCode,
          headers: flat,
          body: await readBounded(body, MAX_ERROR_BODY, url).catch(() => Buffer.alloc(0)),
          url,
        }
        throw this.failure({method: 'GET', url}, answer)
      }
      const declared = Number(flat['content-length'])
      if (Number.isFinite(declared) && declared > maxBytes) {
        discard(body)
        throw tooLarge(this.registry, url, maxBytes, declared)
      }
      const hash = createHash('sha256')
      let size = 0
      try {
        for await (const chunk of body as AsyncIterable<Buffer>) {
          size += chunk.length
          if (size > maxBytes) throw tooLarge(this.registry, url, maxBytes)
          hash.update(chunk)
          await sink(chunk)
        }
      } catch (error) {
        discard(body)
        if (error instanceof MlopsError) throw error
        throw new RegistryUnreachableError(this.registry, error, 1)
      }
      return {digest: `sha256:${hash.digest('hex')}`, size}
    }
    throw new MlopsError('REGISTRY_RESPONSE_INVALID', `${this.registry} redirected more than ${MAX_REDIRECTS} times`, {
      hint: 'The registry or its blob storage is misconfigured; report it to whoever runs it.',
    })
  }

  /** An absolute URL for a path under the registry, or for a Location it answered (possibly relative). */
  async resolve(url: string): Promise<string> {
    const base = await this.originOf()
    const absolute = new URL(url, base)
    if (absolute.protocol !== 'https:' && absolute.protocol !== 'http:')
      throw new MlopsError(
        'REGISTRY_RESPONSE_INVALID',
        `${this.registry} answered a location that is not HTTP: ${url.slice(0, 200)}`,
        {
          hint: 'The registry is misbehaving; report it to whoever runs it.',
        },
      )
    if (absolute.protocol === 'http:' && !this.plainAllowed(absolute.host))
      throw new MlopsError('REGISTRY_RESPONSE_INVALID', `${this.registry} sent us to plain HTTP (${absolute.host})`, {
        hint: 'Pass --plain-http only if you trust the network between you and the registry.',
      })
    return absolute.toString()
  }

  private async send(call: Call): Promise<Answer> {
    const url = await this.resolve(call.url)
    let answer = await this.retrying(call, (u) => this.exchange(call, u), url)
    if (answer.status === 401 && this.sameOrigin(url, await this.originOf())) {
      await this.authenticate(parseChallenge(answer.headers['www-authenticate']))
      answer = await this.retrying(call, (u) => this.exchange(call, u), url)
      if (answer.status === 401) throw await this.unauthorized()
    }
    return answer
  }

  private async retrying<T extends {status?: number; statusCode?: number}>(
    call: Pick<Call, 'idempotent' | 'method' | 'url'>,
    attempt: (url: string) => Promise<T>,
    url = call.url,
  ): Promise<T> {
    const attempts = call.idempotent ? Math.max(1, this.access.attempts ?? 3) : 1
    let last: unknown
    for (let i = 0; i < attempts; i++) {
      if (i > 0) await sleep((this.access.retryDelayMs ?? 500) * 2 ** (i - 1))
      try {
        const result = await attempt(url)
        const status = result.status ?? result.statusCode ?? 0
        if (!TRANSIENT_STATUS.has(status) || i === attempts - 1) return result
        if ('body' in result && typeof (result.body as {destroy?: () => void}).destroy === 'function')
          discard(result.body as Dispatcher.ResponseData['body'])
        last = new Error(`HTTP ${status}`)
      } catch (error) {
        if (!isTransient(error)) throw error
        last = error
      }
    }
    throw new RegistryUnreachableError(this.registry, last, attempts)
  }

  /** One request and its whole (bounded) answer. */
  private async exchange(call: Call, url: string): Promise<Answer> {
    const headers: Record<string, string> = {...call.headers}
    if (this.authorization && this.sameOrigin(url, await this.originOf())) headers.authorization = this.authorization
    const signal = AbortSignal.timeout(this.deadlineFor(call.body?.length ?? 0))
    try {
      const res = await request(url, {
        method: call.method,
        headers,
        body: call.body,
        dispatcher: await this.dispatcherOf(),
        signal,
      })
      const body =
        call.method === 'HEAD' ? Buffer.alloc(0) : await readBounded(res.body, call.maxBody ?? MAX_SMALL_BODY, url)
      if (call.method === 'HEAD') discard(res.body)
      return {status: res.statusCode, headers: flatten(res.headers), body, url}
    } catch (error) {
      if (error instanceof MlopsError) throw error
      throw networkOrTls(this.registry, error)
    }
  }

  /** Milliseconds an exchange moving `bytes` may take in all, so that no answer trickles in for ever. */
  private deadlineFor(bytes: number): number {
    return this.timeouts.smallMs + Math.ceil((bytes / this.timeouts.minBytesPerSecond) * 1000)
  }

  private async rawStream(url: string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {}
    if (this.authorization && this.sameOrigin(url, await this.originOf())) headers.authorization = this.authorization
    try {
      return await request(url, {method: 'GET', headers, dispatcher: await this.dispatcherOf(), signal})
    } catch (error) {
      throw networkOrTls(this.registry, error)
    }
  }

  /** Basic with the credentials, or a Bearer token from the realm the registry named for this repository's scope. */
  private async authenticate(challenge: Challenge | undefined): Promise<void> {
    const credentials = await this.credentialsOf()
    if (!challenge || challenge.scheme === 'basic') {
      if (!credentials) throw await this.unauthorized()
      this.authorization = basicAuthorization(credentials)
      return
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm)
      throw new MlopsError(
        'REGISTRY_AUTH_UNSUPPORTED',
        `${this.registry} asks for ${challenge.scheme} authentication`,
        {
          hint: 'mlops speaks Basic and the Bearer token flow, as docker and skopeo do.',
        },
      )
    const realm = new URL(challenge.params.realm)
    if (realm.protocol !== 'https:' && !(realm.protocol === 'http:' && this.plainAllowed(realm.host)))
      throw new MlopsError(
        'REGISTRY_RESPONSE_INVALID',
        `${this.registry} names a token service over plain HTTP (${realm.host})`,
        {
          hint: 'Credentials are sent to the token service: pass --plain-http only if you trust the network.',
        },
      )
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service)
    realm.searchParams.append('scope', `repository:${this.repository}:${this.actions}`)
    const headers: Record<string, string> = {}
    if (credentials) headers.authorization = basicAuthorization(credentials)
    const answer = await this.retrying({method: 'GET', url: realm.toString(), idempotent: true}, async (u) => {
      try {
        const res = await request(u, {
          method: 'GET',
          headers,
          dispatcher: await this.dispatcherOf(),
          signal: AbortSignal.timeout(this.timeouts.smallMs),
        })
        return {status: res.statusCode, body: await readBounded(res.body, MAX_SMALL_BODY, u)}
      } catch (error) {
        if (error instanceof MlopsError) throw error
        throw networkOrTls(realm.host, error)
      }
    })
    if (answer.status === 401 || answer.status === 403) throw await this.unauthorized()
    let token: unknown
    try {
      const parsed = JSON.parse(answer.body.toString('utf8')) as {token?: unknown; access_token?: unknown}
      token = parsed.token ?? parsed.access_token
    } catch {
      token = undefined
    }
    if (answer.status !== 200 || typeof token !== 'string' || token.length === 0 || /[\r\n]/.test(token))
      throw new MlopsError(
        'REGISTRY_RESPONSE_INVALID',
        `the token service of ${this.registry} (${realm.host}) gave no token (HTTP ${answer.status})`,
        {
          hint: `Log in again ("docker login ${this.registry}"), then run the command again.`,
        },
      )
    this.authorization = `Bearer ${token}`
  }

  private async unauthorized(): Promise<MlopsError> {
    const credentials = await this.credentialsOf()
    const what = credentials
      ? `refused the credentials of ${credentials.username} from ${credentials.source}`
      : 'needs credentials, and none were found'
    return new MlopsError(
      'REGISTRY_UNAUTHORIZED',
      `${this.registry} ${what} (repository ${this.repository}, ${this.actions})`,
      {
        hint: `Log in with "docker login ${this.registry}" or "skopeo login ${this.registry}", or pass --username USER --password-stdin (the password or token on stdin); in GitHub Actions, echo "$GITHUB_TOKEN" into --password-stdin.`,
        details: {registry: this.registry, repository: this.repository, credentialsFrom: credentials?.source},
      },
    )
  }

  private failure(call: Pick<Call, 'method' | 'url'>, answer: Answer): MlopsError {
    const reported = registryErrors(answer.body)
    const said = reported ? `: ${reported}` : ''
    const where = `${this.registry}/${this.repository}`
    if (answer.status === 404)
      return new UsageError(
        'REGISTRY_NOT_FOUND',
        `${where}: no ${whatOf(call.url)} (the repository or the tag does not exist)${said}`,
        {
          hint: `Check the repository and tag ("skopeo list-tags docker://${where}"), or push it first with "mlops artifacts push".`,
          details: {status: 404, url: call.url},
        },
      )
    if (answer.status === 403)
      return new MlopsError('REGISTRY_DENIED', `${this.registry} denies ${this.actions} on ${this.repository}${said}`, {
        hint: `Use credentials with ${this.actions} rights on ${this.repository} (a GitHub token needs packages: write to push).`,
      })
    return new MlopsError(
      'REGISTRY_ERROR',
      `${this.registry} answered ${call.method} ${whatOf(call.url)} with HTTP ${answer.status}${said}`,
      {hint: "Run the command again; if it persists, the registry's logs say why.", details: {status: answer.status}},
    )
  }

  private credentialsOf(): Promise<Credentials | undefined> {
    this.credentials ??= this.access.credentials
      ? Promise.resolve(this.access.credentials)
      : findCredentials(this.registry, this.access.env)
    return this.credentials
  }

  private plainAllowed(host: string): boolean {
    return Boolean(this.access.plainHttp) || isLoopback(host)
  }

  private sameOrigin(url: string, origin: string): boolean {
    return new URL(url).origin === new URL(origin).origin
  }

  private checkRedirect(from: string, location: string): string {
    const next = new URL(location, from)
    if (next.protocol === 'https:' || (next.protocol === 'http:' && this.plainAllowed(next.host)))
      return next.toString()
    throw new MlopsError('REGISTRY_RESPONSE_INVALID', `${this.registry} redirected to ${next.protocol}//${next.host}`, {
      hint: 'Blobs are fetched over HTTPS only; pass --plain-http only if you trust the network.',
    })
  }

  /**
   * https://registry, or http:// when asked; a registry on this machine that does not speak TLS is reached over plain
   * HTTP, as docker and skopeo do for localhost.
   */
  private originOf(): Promise<string> {
    this.origin ??= (async () => {
      if (this.access.plainHttp) return `http://${this.registry}`
      const https = `https://${this.registry}`
      if (!isLoopback(this.registry)) return https
      try {
        const res = await request(`${https}/v2/`, {
          method: 'GET',
          dispatcher: await this.dispatcherOf(),
          signal: AbortSignal.timeout(this.timeouts.connectMs),
        })
        discard(res.body)
        return https
      } catch (error) {
        return isTlsMismatch(error) ? `http://${this.registry}` : https
      }
    })()
    return this.origin
  }

  private dispatcherOf(): Promise<Dispatcher> {
    this.dispatcher ??= (async () => {
      const extra = await extraCertificates(this.registry, this.access)
      return new Agent({
        connect: {
          timeout: this.timeouts.connectMs,
          rejectUnauthorized: this.access.tlsVerify !== false,
          ...(extra.length > 0 ? {ca: [...rootCertificates, ...extra]} : {}),
        },
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyIdleMs,
      })
    })()
    return this.dispatcher
  }
}

/** --ca-file, then the certs.d folders container tools read for this registry (CA files end in .crt). */
async function extraCertificates(registry: string, access: RegistryAccess): Promise<string[]> {
  const certs: string[] = []
  if (access.caFile) {
    try {
      certs.push(await readFile(access.caFile, 'utf8'))
    } catch (error) {
      throw new UsageError(
        'CA_FILE_UNREADABLE',
        `cannot read the CA file ${access.caFile}: ${(error as Error).message}`,
        {
          hint: "Pass --ca-file the path of a PEM file with the certificate(s) that signed the registry's.",
        },
      )
    }
  }
  const home = access.env?.HOME ?? process.env.HOME ?? homedir()
  for (const root of [
    join(home, '.config', 'containers', 'certs.d'),
    '/etc/containers/certs.d',
    '/etc/docker/certs.d',
  ]) {
    const dir = join(root, registry)
    const names = await readdir(dir).catch(() => [] as string[])
    for (const name of names.filter((n) => n.endsWith('.crt')))
      certs.push(await readFile(join(dir, name), 'utf8').catch(() => ''))
  }
  return certs.filter((c) => c.length > 0)
}

/** Reads a body whole, refusing past `max` bytes (the rest is never read). */
export async function readBounded(body: Dispatcher.ResponseData['body'], max: number, url: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > max) {
        discard(body)
        throw tooLarge(new URL(url).host, url, max)
      }
      chunks.push(chunk)
    }
  } catch (error) {
    discard(body)
    throw error
  }
  return Buffer.concat(chunks)
}

/** Stops reading an answer; undici reports the abort as an error event, which is expected here. */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined)
  body.destroy()
}

function tooLarge(registry: string, url: string, max: number, declared?: number): MlopsError {
  return new MlopsError(
    'REGISTRY_RESPONSE_TOO_LARGE',
    `${registry} sent ${declared === undefined ? 'more than' : `${declared} bytes, more than`} ${max} bytes for ${whatOf(url)}; refused`,
    {hint: 'The registry is misbehaving or is not the one you meant; check the reference.', details: {max, declared}},
  )
}

/** The registry's own error codes and messages, bounded and on one line. */
function registryErrors(body: Buffer): string | undefined {
  if (body.length === 0) return undefined
  try {
    const parsed = JSON.parse(body.toString('utf8')) as {errors?: {code?: unknown; message?: unknown}[]}
    const list = Array.isArray(parsed.errors) ? parsed.errors : []
    const said = list
      .slice(0, 3)
      .map((e) => [e.code, e.message].filter((v) => typeof v === 'string').join(' '))
      .filter((s) => s.length > 0)
      .join('; ')
    return said ? oneLine(said) : undefined
  } catch {
    return undefined
  }
}

function oneLine(text: string): string {
  // Control characters from a registry's answer never reach the terminal.
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').slice(0, 300)
}

/** "manifest sha256:…", "blob sha256:…", "upload": what a URL is about, for messages. */
function whatOf(url: string): string {
  const path = url.startsWith('http') ? new URL(url).pathname : url.split('?')[0]
  const match = /\/(manifests|blobs)\/([^/]+)$/.exec(path)
  if (match) return `${match[1] === 'manifests' ? 'manifest' : 'blob'} ${decodeURIComponent(match[2])}`
  if (path.includes('/blobs/uploads')) return 'blob upload'
  return path.slice(0, 200)
}

function flatten(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {}
  for (const [key, value] of Object.entries(headers))
    if (value !== undefined) flat[key.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value
  return flat
}

function codeOf(error: unknown): string | undefined {
  const e = error as {code?: unknown; name?: string; cause?: {code?: unknown}}
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'ABORT_ERR'
  if (typeof e?.code === 'string') return e.code
  return typeof e?.cause?.code === 'string' ? e.cause.code : undefined
}

function isTransient(error: unknown): boolean {
  if (error instanceof RegistryUnreachableError) return true
  const cause = (error as {cause?: unknown})?.cause
  return TRANSIENT_CODES.has(codeOf(error) ?? '') || (cause !== undefined && TRANSIENT_CODES.has(codeOf(cause) ?? ''))
}

function isTlsMismatch(error: unknown): boolean {
  const code = codeOf(error) ?? ''
  const message = String((error as Error)?.message ?? '')
  return code === 'EPROTO' || code.startsWith('ERR_SSL') || /wrong version number|packet length too long/i.test(message)
}

function isTlsFailure(error: unknown): boolean {
  const code = codeOf(error) ?? ''
  return /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|HOSTNAME|ALTNAME/.test(code) || isTlsMismatch(error)
}

/** A TLS failure is for the user to fix (a CA file); anything else from the network is transient. */
function networkOrTls(registry: string, error: unknown): Error {
  if (isTlsFailure(error))
    return new MlopsError(
      'REGISTRY_TLS_FAILED',
      `the TLS connection to ${registry} failed: ${describeNetworkError(error)}`,
      {
        hint: `For a private CA pass --ca-file CA.pem (or put it in /etc/containers/certs.d/${registry}/ca.crt); --tls-verify=false turns verification off.`,
        cause: error,
      },
    )
  return error as Error
}

function describeNetworkError(error: unknown): string {
  const code = codeOf(error)
  const message = oneLine(String((error as Error)?.message ?? error))
  if (code === 'ABORT_ERR' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT')
    return `timed out (${message})`
  return code && !message.includes(code) ? `${code} ${message}` : message
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
