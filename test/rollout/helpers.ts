// Real projects in temp folders, real gateways and model servers on 127.0.0.1, and bounded client load against them.
import assert from 'node:assert/strict'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {Pool} from 'undici'

import {down, waitForOutcome} from '../../src/rollout/deploy.js'
import {MODELS_DIR, tempDir} from '../support/cli.js'

export const XGB = join(MODELS_DIR, 'xgboost_regressor.onnx')
export const XGB_BODY = JSON.stringify({instances: [{X: [1, 2, 3, 4]}]})
/** What xgboost_regressor answers for XGB_BODY (from the shared model's own run). */
export const XGB_ANSWER = 1.2638273239135742

let nextPort = 19_300 + (process.pid % 200) * 3

/** A free-enough port per project: tests run one at a time, and each project takes its own. */
export function port(): number {
  nextPort += 1
  return nextPort
}

export interface Project {
  dir: string
  port: number
  url: string
  cleanup(): Promise<void>
}

export async function project(deploy: Record<string, unknown> = {}): Promise<Project> {
  const {path, remove} = await tempDir('mlops-rollout-')
  const p = port()
  const config = {name: 'demo', model: {path: XGB}, deploy: {port: p, ...deploy}}
  await writeFile(join(path, 'mlops.yaml'), JSON.stringify(config, null, 2))
  return {
    dir: path,
    port: p,
    url: `http://127.0.0.1:${p}`,
    async cleanup() {
      // A down that fails would leave a gateway running after the test: let it fail the test.
      try {
        await down({dir: path, actor: 'test'})
      } finally {
        await remove()
      }
    },
  }
}

/** Fast analysis settings: judge every 0.2 s, on 30 requests, after a 1 s bake; latency slack wide for 2 shared cores. */
export const FAST_ANALYSIS = {
  interval_seconds: 0.2,
  min_requests: 30,
  bake_seconds: 1,
  deadline_seconds: 60,
  gates: {latency: {slack_ms: 500, max_p99_ratio: 3}},
}

export interface Answer {
  status: number
  version?: string
  body: string
  error?: string
}

export async function predict(
  pool: Pool,
  headers: Record<string, string> = {},
  body = XGB_BODY,
  path = '/v1/predict',
): Promise<Answer> {
  try {
    const res = await pool.request({
      method: 'POST',
      path,
      headers: {'content-type': 'application/json', ...headers},
      body,
    })
    return {
      status: res.statusCode,
      version: res.headers['x-model-version'] as string | undefined,
      body: await res.body.text(),
    }
  } catch (error) {
    return {status: 0, body: '', error: (error as Error).message}
  }
}

export interface Load {
  answers: Answer[]
  /** Stops sending, waits for the requests in flight, returns every answer. */
  stop(): Promise<Answer[]>
}

/** Steady client traffic at `concurrency` until stopped (bounded to `max` requests). */
export function steadyLoad(url: string, concurrency = 4, max = 50_000): Load {
  const pool = new Pool(url, {connections: concurrency})
  const answers: Answer[] = []
  let running = true
  const workers = Array.from({length: concurrency}, async () => {
    while (running && answers.length < max) answers.push(await predict(pool))
  })
  return {
    answers,
    async stop() {
      running = false
      await Promise.all(workers)
      await pool.close()
      return answers
    },
  }
}

/** Sends `count` requests, `concurrency` at a time. */
export async function burst(
  url: string,
  count: number,
  concurrency = 8,
  headers: (i: number) => Record<string, string> = () => ({}),
): Promise<Answer[]> {
  const pool = new Pool(url, {connections: concurrency})
  const answers: Answer[] = []
  let next = 0
  await Promise.all(
    Array.from({length: concurrency}, async () => {
      while (next < count) {
        const i = next++
        answers[i] = await predict(pool, headers(i))
      }
    }),
  )
  await pool.close()
  return answers
}

export function failures(answers: Answer[]): Answer[] {
  return answers.filter((a) => a.status !== 200)
}

export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await fn()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Waits for `version`'s rollout to end rolled back, with a message matching `message` (it names the gate). */
export async function assertRolledBack(dir: string, version: string, revision: number, message: RegExp): Promise<void> {
  await assert.rejects(
    waitForOutcome({dir, version, revision, timeoutMs: 60_000}),
    (error: Error & {code?: string}) => {
      assert.equal(error.code, 'ROLLED_BACK')
      assert.match(error.message, message)
      return true
    },
  )
}
