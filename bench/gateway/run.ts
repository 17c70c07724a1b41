// Gateway bench: latency the gateway adds over calling the model server directly, next to nginx as a reverse proxy, and
// what shadow mirroring costs stable's p99 — all in one run, PASS/FAIL per target. Run: npx tsx bench/gateway/run.ts
import {spawn} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

import {Pool} from 'undici'

import {deploy, down} from '../../src/rollout/deploy.js'
import {serveInvocation} from '../../src/targets/local/invocation.js'
import {MODELS_DIR} from '../../test/support/cli.js'

const MODEL = join(MODELS_DIR, 'xgboost_regressor.onnx')
const BODY = JSON.stringify({instances: [{X: [1, 2, 3, 4]}]})
const NGINX = '/usr/sbin/nginx'
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const REQUESTS = {1: Number(process.env.BENCH_REQUESTS_C1 ?? 2000), 16: Number(process.env.BENCH_REQUESTS_C16 ?? 6000)} as const
const TARGET_ADDED_P50_MS = 0.5
const TARGET_MIRROR_P99 = 0.1

interface Measure {
  p50: number
  p99: number
  rps: number
  failed: number
}

/** Closed loop: `concurrency` clients, each sending its next request when the last one is answered. */
async function measure(url: string, concurrency: number, count: number): Promise<Measure> {
  const pool = new Pool(url, {connections: concurrency, pipelining: 1})
  const latencies: number[] = []
  let failed = 0
  let next = 0
  const started = performance.now()
  await Promise.all(Array.from({length: concurrency}, async () => {
    while (next++ < count) {
      const t = performance.now()
      try {
        const res = await pool.request({method: 'POST', path: '/v1/predict', headers: {'content-type': 'application/json'}, body: BODY})
        await res.body.arrayBuffer()
        if (res.statusCode !== 200) failed++
      } catch {
        failed++
      }
      latencies.push(performance.now() - t)
    }
  }))
  const seconds = (performance.now() - started) / 1000
  await pool.close()
  latencies.sort((a, b) => a - b)
  return {p50: latencies[Math.floor(latencies.length / 2)], p99: latencies[Math.floor(latencies.length * 0.99)], rps: latencies.length / seconds, failed}
}

/** The median over rounds of each figure, the rounds interleaved across targets so drift on a shared machine hits all alike. */
async function compare(urls: Record<string, string>, concurrency: 1 | 16): Promise<Record<string, Measure>> {
  const runs: Record<string, Measure[]> = Object.fromEntries(Object.keys(urls).map((k) => [k, []]))
  for (const url of Object.values(urls)) await measure(url, concurrency, 300)
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, url] of Object.entries(urls)) runs[name].push(await measure(url, concurrency, REQUESTS[concurrency]))
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]
  return Object.fromEntries(Object.entries(runs).map(([name, list]) => [name, {p50: median(list.map((m) => m.p50)), p99: median(list.map((m) => m.p99)), rps: median(list.map((m) => m.rps)), failed: list.reduce((n, m) => n + m.failed, 0)}]))
}

async function startServer(): Promise<{url: string; stop: () => void}> {
  const {command, args} = serveInvocation()
  const child = spawn(command, [...args, '--model', MODEL, '--port', '0', '--json'], {stdio: ['ignore', 'pipe', 'inherit'], env: {...process.env, CI: 'true'}})
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({input: child.stdout!}).once('line', resolve)
    child.once('exit', (code) => reject(new Error(`mlops serve exited with ${code}`)))
  })
  return {url: (JSON.parse(line) as {url: string}).url, stop: () => child.kill('SIGTERM')}
}

async function startNginx(dir: string, upstream: string, port: number): Promise<() => void> {
  const conf = join(dir, 'nginx.conf')
  await writeFile(conf, `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream model { server ${new URL(upstream).host}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / { proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`)
  const child = spawn(NGINX, ['-c', conf, '-p', dir], {stdio: ['ignore', 'inherit', 'inherit']})
  await new Promise((r) => setTimeout(r, 500))
  if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}; see ${dir}/error.log`)
  return () => child.kill('SIGTERM')
}

const fmt = (ms: number) => ms.toFixed(3).padStart(8)
const dir = await mkdtemp(join(tmpdir(), 'mlops-bench-gateway-'))
const gatewayPort = 19_700 + (process.pid % 100)
const nginxPort = gatewayPort + 100
const stops: (() => void)[] = []
let failedTargets = 0
try {
  await writeFile(join(dir, 'mlops.yaml'), JSON.stringify({name: 'bench', model: {path: MODEL}, deploy: {port: gatewayPort, analysis: {interval_seconds: 3600}}}))
  const direct = await startServer()
  stops.push(direct.stop)
  stops.push(await startNginx(dir, direct.url, nginxPort))
  // The gateway runs its own model server; the direct one is a second copy of the same model, so both paths do the same work.
  await deploy({dir, ref: '1.0.0', model: MODEL, stage: 'full', actor: 'bench'})
  const gateway = `http://127.0.0.1:${gatewayPort}`
  const nginx = `http://127.0.0.1:${nginxPort}`

  console.log(`gateway bench: xgboost_regressor /v1/predict, ${ROUNDS} rounds, median of rounds; ms`)
  for (const concurrency of [1, 16] as const) {
    const r = await compare({direct: direct.url, gateway, nginx}, concurrency)
    const added = {gateway: r.gateway.p50 - r.direct.p50, nginx: r.nginx.p50 - r.direct.p50}
    console.log(`\nconcurrency ${concurrency}          p50      p99    req/s  failed`)
    for (const [name, m] of Object.entries(r)) console.log(`  ${name.padEnd(16)}${fmt(m.p50)} ${fmt(m.p99)} ${m.rps.toFixed(0).padStart(8)} ${String(m.failed).padStart(6)}`)
    console.log(`  added at p50: gateway ${fmt(added.gateway)}, nginx ${fmt(added.nginx)}; added at p99: gateway ${fmt(r.gateway.p99 - r.direct.p99)}, nginx ${fmt(r.nginx.p99 - r.direct.p99)}`)
    const pass = added.gateway <= TARGET_ADDED_P50_MS && r.gateway.failed === 0
    if (!pass) failedTargets++
    console.log(`  ${pass ? 'PASS' : 'FAIL'} gateway adds ${added.gateway.toFixed(3)} ms at p50 (target <= ${TARGET_ADDED_P50_MS} ms, no failed request)`)
  }

  const full = await compare({gateway}, 16)
  await deploy({dir, ref: '1.1.0', model: MODEL, stage: 'shadow', actor: 'bench'})
  const shadow = await compare({gateway}, 16)
  const cost = shadow.gateway.p99 / full.gateway.p99 - 1
  console.log(`\nshadow mirroring (every request mirrored), concurrency 16: stable p99 ${fmt(full.gateway.p99)} → ${fmt(shadow.gateway.p99)} (${(cost * 100).toFixed(1)}%), p50 ${fmt(full.gateway.p50)} → ${fmt(shadow.gateway.p50)}`)
  const pass = cost < TARGET_MIRROR_P99 && shadow.gateway.failed === 0
  if (!pass) failedTargets++
  console.log(`  ${pass ? 'PASS' : 'FAIL'} mirroring costs stable p99 ${(cost * 100).toFixed(1)}% (target < ${TARGET_MIRROR_P99 * 100}%); note the candidate's inference shares the same cores`)
} finally {
  await down({dir, actor: 'bench'}).catch(() => undefined)
  for (const stop of stops) stop()
  await rm(dir, {recursive: true, force: true})
}
process.exitCode = failedTargets > 0 ? 1 : 0
