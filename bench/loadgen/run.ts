// Load generator bench: mlops test's generator against wrk and autocannon, in one run, on the same local fixed-latency endpoint.
// Debian's wrk is wrk 4 (no -R rate option), so latency is compared closed-loop at the same connection count, where the
// three tools send at the same (server-bound) rate. Prints the figures and PASS/FAIL per target.
import {type ChildProcess, spawn} from 'node:child_process'
import {once} from 'node:events'
import {writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

import autocannon from 'autocannon'
import {execa} from 'execa'

import {runLoadPhase} from '../../src/checks/load/run.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4)
// Tools take turns (A B A B A B) and each figure is the median of its rounds: a shared machine drifts over a minute.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const DELAY_MS = 5
const CONNECTIONS = 10
const BODY = JSON.stringify({
  instances: [
    {
      age: 41,
      income: 52000,
      debt_ratio: 0.3,
      credit_history_months: 120,
      region: 'north',
      employment: 'employed',
      has_prior_default: false,
    },
  ],
})

interface Figures {
  rps: number
  p50: number
  p99: number
}

async function startServer(delay: number): Promise<{child: ChildProcess; url: string}> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'server.ts'), String(delay)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [port] = (await once(createInterface({input: child.stdout}), 'line')) as [string]
  return {child, url: `http://127.0.0.1:${port}/v1/predict`}
}

async function ours(url: string, connections: number): Promise<Figures> {
  const {origin, pathname} = new URL(url)
  const phase = await runLoadPhase({
    origin,
    requests: [{path: pathname, body: BODY}],
    mode: 'closed',
    concurrency: connections,
    warmupMs: 1000,
    durationMs: SECONDS * 1000,
    timeoutMs: 10_000,
  })
  if (phase.errorRate > 0) throw new Error(`mlops generator saw errors: ${JSON.stringify(phase.statuses)}`)
  return {rps: phase.throughput, p50: phase.latencyMs.p50, p99: phase.latencyMs.p99}
}

/** wrk 4 with --latency: its percentiles are HDR too; two threads, like a small CI runner. */
async function wrk(url: string, connections: number): Promise<Figures> {
  const script = join(tmpdir(), 'mlops-bench-wrk.lua')
  writeFileSync(script, `wrk.method = "POST"\nwrk.body = '${BODY}'\nwrk.headers["Content-Type"] = "application/json"\n`)
  const {stdout} = await execa('/usr/bin/wrk', [
    '-t2',
    `-c${connections}`,
    `-d${SECONDS}s`,
    '--latency',
    '-s',
    script,
    url,
  ])
  const ms = (label: string) => {
    const m = new RegExp(`^\\s*${label}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(String(stdout))
    if (!m) throw new Error(`no ${label}% in wrk output:\n${stdout}`)
    return Number(m[1]) * {us: 0.001, ms: 1, s: 1000}[m[2] as 'us']
  }
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(String(stdout))?.[1])
  return {rps, p50: ms('50'), p99: ms('99')}
}

async function cannon(url: string, connections: number): Promise<Figures> {
  const result = await autocannon({
    url,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: BODY,
    connections,
    duration: SECONDS,
  })
  return {rps: result.requests.total / SECONDS, p50: result.latency.p50, p99: result.latency.p99}
}

async function rounds(runs: (() => Promise<Figures>)[]): Promise<Figures[]> {
  const all: Figures[][] = runs.map(() => [])
  for (let r = 0; r < ROUNDS; r++) for (const [i, run] of runs.entries()) all[i].push(await run())
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  return all.map((fs) => ({
    rps: median(fs.map((f) => f.rps)),
    p50: median(fs.map((f) => f.p50)),
    p99: median(fs.map((f) => f.p99)),
  }))
}

function within(a: number, b: number, share: number): boolean {
  return Math.abs(a - b) <= share * b
}

const show = (f: Figures) =>
  `${f.rps.toFixed(0).padStart(6)} rps  p50 ${f.p50.toFixed(2).padStart(6)} ms  p99 ${f.p99.toFixed(2).padStart(6)} ms`
const results: [string, boolean][] = []

const slow = await startServer(DELAY_MS)
try {
  console.log(
    `Latency at ${CONNECTIONS} connections, closed loop, ${SECONDS}s × ${ROUNDS} rounds each (medians), endpoint answering after ${DELAY_MS} ms:`,
  )
  const [w, m] = await rounds([() => wrk(slow.url, CONNECTIONS), () => ours(slow.url, CONNECTIONS)])
  console.log(`  wrk         ${show(w)}`)
  console.log(`  mlops test  ${show(m)}`)
  results.push([`p50 within 10% of wrk's (${m.p50.toFixed(2)} vs ${w.p50.toFixed(2)} ms)`, within(m.p50, w.p50, 0.1)])
  results.push([`p99 within 10% of wrk's (${m.p99.toFixed(2)} vs ${w.p99.toFixed(2)} ms)`, within(m.p99, w.p99, 0.1)])
  results.push([
    `same rate as wrk within 10% (${m.rps.toFixed(0)} vs ${w.rps.toFixed(0)} rps)`,
    within(m.rps, w.rps, 0.1),
  ])
} finally {
  slow.child.kill('SIGTERM')
}

const fast = await startServer(0)
try {
  const connections = 32
  console.log(
    `\nMaximum rate at ${connections} connections, closed loop, ${SECONDS}s × ${ROUNDS} rounds each (medians), endpoint answering at once:`,
  )
  const [a, m] = await rounds([() => cannon(fast.url, connections), () => ours(fast.url, connections)])
  console.log(`  autocannon  ${show(a)}`)
  console.log(`  mlops test  ${show(m)}`)
  results.push([
    `max rate at least autocannon's (${m.rps.toFixed(0)} vs ${a.rps.toFixed(0)} rps, ratio ${(m.rps / a.rps).toFixed(2)})`,
    m.rps >= a.rps,
  ])
} finally {
  fast.child.kill('SIGTERM')
}

console.log('')
for (const [what, ok] of results) console.log(`${ok ? 'PASS' : 'FAIL'}  ${what}`)
process.exitCode = results.every(([, ok]) => ok) ? 0 : 1
