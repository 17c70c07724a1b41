// Sends each robustness case and judges the answer: a 5xx, a hang, a crash or an unhealthy server afterwards fails it.
import {Agent, request} from 'undici'

import type {TargetServer} from '../server.js'
import {isReady} from '../server.js'
import type {Expectation, RobustnessCase} from './cases.js'

export type CaseOutcome =
  | 'ok'
  | 'server_error'
  | 'timeout'
  | 'crash'
  | 'connection_reset'
  | 'unhealthy'
  | 'accepted_bad_request'
  | 'refused_valid_request'
  | 'non_finite_prediction'
  | 'bad_error_body'

export interface CaseResult {
  name: string
  kind: string
  expect: Expectation
  passed: boolean
  outcome: CaseOutcome
  /** HTTP status, when there was an answer. */
  status?: number
  /** What went wrong, in a line. */
  detail?: string
  /** A 5xx that did not come back when the same request was sent again: availability noise, not a broken input. */
  intermittent?: boolean
  /** The request, for a failed case: enough to reproduce it. */
  request?: {method: string; path: string; contentType: string; bytes: number; body: string}
}

export interface RobustnessRun {
  results: CaseResult[]
  /** Cases not sent because the server was down. */
  notRun: number
  crashed: boolean
  healthyAfter: boolean
}

/** Tries of a request that got a 5xx: a 5xx counts as the input's fault only when it comes back every time. */
const TRIES = 4
const BODY_PREVIEW = 2000

export async function runRobustness(
  server: TargetServer,
  cases: readonly RobustnessCase[],
  options: {timeoutMs: number; onCase?: (done: number, total: number) => void},
): Promise<RobustnessRun> {
  const agent = new Agent({connections: 4, keepAliveTimeout: 10_000})
  const results: CaseResult[] = []
  let crashed = false
  try {
    for (const c of cases) {
      let result = await sendCase(agent, server.url, c, options.timeoutMs)
      for (let tries = 1; result.outcome === 'server_error' && tries < TRIES; tries++) {
        const again = await sendCase(agent, server.url, c, options.timeoutMs)
        if (again.outcome !== 'server_error')
          result = {
            ...again,
            intermittent: true,
            detail: `${result.detail}; the same request then got ${again.status ?? again.outcome}`,
          }
      }
      // After every case the server must still be up and ready: a crash or a wedged model fails the case that did it.
      if (!(await isReady(server.url, options.timeoutMs))) {
        const exit = await server.exited(1000)
        crashed = true
        const how = exit
          ? `the server process ended (${exit.signal ?? `exit code ${exit.code}`})`
          : 'the server stopped answering /v2/health/ready'
        result = {
          ...result,
          passed: false,
          outcome: exit || result.outcome === 'connection_reset' ? 'crash' : 'unhealthy',
          detail: `${how} after this request${result.detail ? `; ${result.detail}` : ''}`,
        }
      }
      if (!result.passed) result.request = describe(c)
      results.push(result)
      options.onCase?.(results.length, cases.length)
      if (crashed) break
    }
  } finally {
    await agent.close()
  }
  return {
    results,
    notRun: cases.length - results.length,
    crashed,
    healthyAfter: !crashed && (await isReady(server.url, options.timeoutMs)),
  }
}

async function sendCase(agent: Agent, url: string, c: RobustnessCase, timeoutMs: number): Promise<CaseResult> {
  const base = {name: c.name, kind: c.kind, expect: c.expect}
  let status: number
  let text: string
  try {
    const response = await request(`${url}${c.path}`, {
      dispatcher: agent,
      method: c.method,
      headers: {'content-type': c.contentType},
      body: c.body,
      signal: AbortSignal.timeout(timeoutMs),
    })
    status = response.statusCode
    text = await response.body.text()
  } catch (error) {
    const e = error as {name?: string; code?: string; message?: string}
    if (e.name === 'TimeoutError' || e.name === 'AbortError')
      return {...base, passed: false, outcome: 'timeout', detail: `no answer within ${timeoutMs} ms`}
    const detail = `the connection closed without an answer: ${e.code ?? e.name}: ${e.message}`
    // The health check that follows tells a crash from a closed connection.
    return c.mayClose
      ? {...base, passed: true, outcome: 'ok', detail}
      : {...base, passed: false, outcome: 'connection_reset', detail}
  }
  return {...base, status, ...judge(c.expect, status, text)}
}

/** The verdict on one answer, by what the case expects. */
export function judge(
  expect: Expectation,
  status: number,
  text: string,
): {passed: boolean; outcome: CaseOutcome; detail?: string} {
  if (status >= 500)
    return {passed: false, outcome: 'server_error', detail: `answered ${status}: ${text.slice(0, 200)}`}
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  if (status >= 400) {
    if (expect === 'predict')
      return {
        passed: false,
        outcome: 'refused_valid_request',
        detail: `answered ${status} to a valid request: ${text.slice(0, 200)}`,
      }
    const hasError = body !== null && typeof body === 'object' && 'error' in body
    return hasError
      ? {passed: true, outcome: 'ok'}
      : {
          passed: false,
          outcome: 'bad_error_body',
          detail: `answered ${status} without a JSON error body: ${text.slice(0, 200)}`,
        }
  }
  if (expect === 'reject')
    return {passed: false, outcome: 'accepted_bad_request', detail: `answered ${status} to a request it should refuse`}
  if (expect === 'answered') return {passed: true, outcome: 'ok'}
  const bad = body === undefined ? 'the body is not JSON' : nonFinite(body)
  return bad
    ? {passed: false, outcome: 'non_finite_prediction', detail: `answered ${status}, but ${bad}`}
    : {passed: true, outcome: 'ok'}
}

/** The first value in a 200 answer that is not a finite number where a number belongs (null, NaN, ±Infinity). */
function nonFinite(body: unknown): string | undefined {
  const values =
    (body as {predictions?: unknown; outputs?: {data?: unknown}[]}).predictions ??
    (body as {outputs?: {data?: unknown}[]}).outputs?.map((o) => o.data)
  if (values === undefined) return 'it holds neither predictions nor outputs'
  const walk = (v: unknown, path: string): string | undefined => {
    if (typeof v === 'number') return Number.isFinite(v) ? undefined : `${path} is ${v}`
    if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return `${path} is ${v}`
    if (v === null) return `${path} is null`
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const found = walk(v[i], `${path}[${i}]`)
        if (found) return found
      }
    } else if (typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const found = walk(x, `${path}.${k}`)
        if (found) return found
      }
    }
    return undefined
  }
  return walk(values, 'predictions' in (body as object) ? 'predictions' : 'outputs')
}

function describe(c: RobustnessCase): CaseResult['request'] {
  const bytes = Buffer.byteLength(c.body)
  const text = typeof c.body === 'string' ? c.body : c.body.toString('utf8')
  const body = text.length > BODY_PREVIEW ? `${text.slice(0, BODY_PREVIEW)}… (${bytes} bytes in all)` : text
  return {method: c.method, path: c.path, contentType: c.contentType, bytes, body}
}
