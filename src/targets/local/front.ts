// The gateway's client port: each request checked (auth), routed (stable, or the candidate by weight or sticky key),
// forwarded to a model server over its keep-alive pool, and answered. The same code runs in the gateway process, or in
// each of its workers (deploy.gateway_workers, front-worker.ts), which get their routes from the gateway over IPC.
import {type Authenticator, CALLER_HEADER, GATEWAY_TOKEN_HEADER} from '../../auth/authenticator.js'
import type {Answer, Upstream} from '../../http/client.js'
import {type RequestHandler, type ServerAnswer, errorAnswer, headerValue, pathOf} from '../../http/server.js'
import {HttpError} from '../../serve/errors.js'
import {withSecurity} from '../../serve/openapi.js'
import type {Stage} from '../../rollout/types.js'

/** A model server as the client port sees it: its pool, and a count of requests on their way to it. */
export interface Backend {
  readonly release: {version: string}
  readonly pool?: Upstream
  readonly ready: boolean
  acquire(): void
  releaseOne(): void
}

export interface FrontRoutes {
  stable: Backend
  candidate?: Backend
  stage: Stage
  weight: number
  stickyHeader?: string
}

export type Role = 'stable' | 'candidate'

/** A client request as forwarded: hop-by-hop headers left out, the caller named. */
export interface ForwardedRequest {
  method: string
  path: string
  headers: string[]
  body: Buffer
}

export interface FrontHooks<R extends FrontRoutes> {
  /** Names and values added to every forwarded request: the token the model servers ask of the gateway. */
  forwardHeaders?: readonly string[]
  /** Where requests go now; undefined before the first rollout is applied (503). */
  routes(): R | undefined
  auth(): Authenticator | undefined
  /** A prediction answered by `role`, `ms` after it was sent; `failed`: a 5xx. */
  measured(routes: R, role: Role, ms: number, failed: boolean): void
  /** A prediction answered by stable, once the client has its answer (shadow mirroring takes it from here). */
  answeredByStable?(routes: R, request: ForwardedRequest, answer: Answer): void
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the ones each connection's framing owns: not forwarded either way. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
  'expect',
  'content-length',
  'http2-settings',
])
/** Also left out of answers: the gateway names the version that answered itself. */
const NOT_RETURNED = new Set([...HOP_BY_HOP, 'x-model-version'])
const PREDICTION_ROUTE = /^\/(?:v1\/predict|v2\/models\/[^/]+(?:\/versions\/[^/]+)?\/infer)\/?$/
const RETRYABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE'])
/** undici refused to send a header the client's request had (a value it will not write): the client's mistake. */
const NOT_FORWARDABLE = 'UND_ERR_INVALID_ARG'

/** The client port's request handler. */
export function frontHandler<R extends FrontRoutes>(hooks: FrontHooks<R>): RequestHandler {
  return (req, respond) => {
    handle(hooks, req, respond).catch((error: Error) => respond(errorAnswer(500, 'GATEWAY_ERROR', error.message)))
  }
}

async function handle<R extends FrontRoutes>(
  hooks: FrontHooks<R>,
  req: Parameters<RequestHandler>[0],
  respond: (answer: ServerAnswer) => void,
): Promise<void> {
  const routes = hooks.routes()
  if (!routes)
    return respond(errorAnswer(503, 'NOT_READY', 'the gateway has no model server ready yet', ['retry-after', '1']))
  const {method, url: path, body} = req
  const auth = hooks.auth()
  let caller: string | undefined
  try {
    caller = (await auth?.authorize(method, path, req.headers))?.name
  } catch (error) {
    if (!(error instanceof HttpError)) throw error
    const extra = Object.entries(error.headers).flat()
    return respond(errorAnswer(error.status, error.code, error.message, extra))
  }
  const prediction = method === 'POST' && PREDICTION_ROUTE.test(pathOf(path))
  const role = pickRole(routes, req.headers)
  // Model servers log the caller the gateway names; whatever the client put there is dropped.
  const headers = upstreamHeaders(req.headers)
  if (caller !== undefined) headers.push(CALLER_HEADER, caller)
  if (hooks.forwardHeaders) headers.push(...hooks.forwardHeaders)
  const forwarded: ForwardedRequest = {method, path, headers, body}
  const started = performance.now()
  const idempotent = prediction || method === 'GET' || method === 'HEAD'
  const {answer, backend, role: answeredBy} = await forward(hooks, routes, role, forwarded, idempotent)
  if (prediction) hooks.measured(routes, answeredBy, performance.now() - started, answer.status >= 500)
  const out: string[] = []
  let headLength: number | undefined
  for (let i = 0; i < answer.headers.length; i += 2) {
    const name = answer.headers[i].toLowerCase()
    if (!NOT_RETURNED.has(name)) out.push(answer.headers[i], answer.headers[i + 1])
    else if (name === 'content-length' && method === 'HEAD') headLength = Number(answer.headers[i + 1])
  }
  out.push('x-model-version', backend.release.version)
  respond({status: answer.status, headers: out, body: documented(auth, method, path, answer), headLength})
  // The copy goes to the candidate once the client has its answer: stable's path never waits behind the mirror.
  if (prediction && answeredBy === 'stable') hooks.answeredByStable?.(routes, forwarded, answer)
}

/** Its model servers run without auth: the OpenAPI document they give gets the security this gateway enforces. */
function documented(auth: Authenticator | undefined, method: string, path: string, answer: Answer): Buffer | string {
  const settings = auth?.enabled ? auth.settings : undefined
  if (!settings || method !== 'GET' || pathOf(path) !== '/openapi.json' || answer.status !== 200) return answer.body
  try {
    return JSON.stringify(withSecurity(JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>, settings))
  } catch {
    return answer.body
  }
}

/** Sends to the chosen version; a connection error on an idempotent request is retried once, on stable if the version is gone. */
async function forward<R extends FrontRoutes>(
  hooks: FrontHooks<R>,
  routes: R,
  role: Role,
  request: ForwardedRequest,
  idempotent: boolean,
): Promise<{answer: Answer; backend: Backend; role: Role}> {
  let backend = role === 'candidate' && routes.candidate ? routes.candidate : routes.stable
  let actual: Role = backend === routes.candidate ? 'candidate' : 'stable'
  for (let attempt = 0; ; attempt++) {
    try {
      return {answer: await send(backend, request), backend, role: actual}
    } catch (error) {
      const code = (error as {code?: string}).code ?? ''
      if (code === NOT_FORWARDABLE) {
        const refused = errorAnswer(400, 'BAD_HEADER', 'the request has a header value the gateway cannot forward')
        return {answer: refused, backend, role: actual}
      }
      if (attempt > 0 || !idempotent || !(RETRYABLE.has(code) || !backend.pool)) {
        const failed = errorAnswer(
          502,
          'UPSTREAM_FAILED',
          `the model server for ${backend.release.version} failed: ${(error as Error).message}`,
        )
        return {answer: failed, backend, role: actual}
      }
      // Routing may have moved on since (a promotion, a rollback, a restart): retry where it points now.
      const now = hooks.routes() ?? routes
      const same = actual === 'candidate' ? now.candidate : now.stable
      backend = same?.ready ? same : now.stable
      actual = backend === now.candidate ? 'candidate' : 'stable'
    }
  }
}

/**
 * One request to a model server over its keep-alive pool, the answer buffered whole: predictions are small, and a buffered
 * answer can still be retried or compared with the candidate's.
 */
async function send(backend: Backend, request: ForwardedRequest): Promise<Answer> {
  const pool = backend.pool
  if (!pool)
    throw Object.assign(new Error(`the model server for ${backend.release.version} is not running`), {
      code: 'ECONNREFUSED',
    })
  backend.acquire()
  try {
    return await pool.request(request)
  } finally {
    backend.releaseOne()
  }
}

/**
 * Canary: weighted random, or a bucket of the sticky header's value so one key always lands on one version. `headers`:
 * names in lower case and values, alternating.
 */
export function pickRole(routes: FrontRoutes, headers: string[]): Role {
  if (routes.stage !== 'canary' || !routes.candidate?.ready) return 'stable'
  const key = routes.stickyHeader ? headerValue(headers, routes.stickyHeader) : undefined
  const point = key ? stickyPoint(key) : Math.random() * 100
  return point < routes.weight ? 'candidate' : 'stable'
}

/** FNV-1a of the key onto [0, 100) in steps of 0.01. */
export function stickyPoint(key: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return (hash % 10_000) / 100
}

/**
 * The client's headers less the hop-by-hop ones, and less the ones only the gateway may send (the caller it checked, its
 * token); names in lower case, as the client port hands them over.
 */
function upstreamHeaders(headers: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < headers.length; i += 2)
    if (!HOP_BY_HOP.has(headers[i]) && headers[i] !== CALLER_HEADER && headers[i] !== GATEWAY_TOKEN_HEADER)
      out.push(headers[i], headers[i + 1])
  return out
}
