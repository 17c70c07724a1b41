// The load generator, in its own process so it does not share the server's event loop. Prints one JSON line.
// Concurrency above 1: wrk (C, one thread), which leaves the server more of this two-core machine than a Node load
// generator would (measured: wrk ~0.2 of a core at 20k req/s, autocannon a whole core). At concurrency 1 a keep-alive
// loop times each request in microseconds. An optional fifth argument is a JSON object of request headers.
import {readFileSync, writeFileSync} from 'node:fs'
import {Agent, request} from 'node:http'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'

const [url, bodyFile, connections, seconds, headersJson] = process.argv.slice(2)
const headers: Record<string, string> = {
  'content-type': 'application/json',
  ...(headersJson ? JSON.parse(headersJson) : {}),
}

// wrk reads the body from the file in each thread's init and prints its summary as JSON when done.
const WRK_SCRIPT = `
init = function(args)
  local f = assert(io.open(args[1], "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.method = "POST"
  for i = 2, #args, 2 do wrk.headers[args[i]] = args[i + 1] end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"us":%d,"p50":%d,"p99":%d,"failed":%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status + e.connect + e.read + e.write + e.timeout))
end
`

if (Number(connections) === 1) {
  const body = readFileSync(bodyFile)
  const agent = new Agent({keepAlive: true, maxSockets: 1})
  const latencies: number[] = []
  let failed = 0
  const end = performance.now() + Number(seconds) * 1000
  while (performance.now() < end) {
    const started = performance.now()
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        url,
        {method: 'POST', agent, headers: {...headers, 'content-length': String(body.length)}},
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        },
      )
      req.on('error', reject)
      req.end(body)
    })
    latencies.push(performance.now() - started)
    if (status !== 200) failed++
  }
  agent.destroy()
  latencies.sort((a, b) => a - b)
  process.stdout.write(
    JSON.stringify({
      rps: latencies.length / Number(seconds),
      p50: latencies[Math.floor(latencies.length / 2)],
      p99: latencies[Math.floor(latencies.length * 0.99)],
      failed,
    }) + '\n',
  )
} else {
  const script = join(tmpdir(), 'mlops-bench-wrk.lua')
  writeFileSync(script, WRK_SCRIPT)
  const {stdout} = await execa('wrk', [
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '--timeout',
    '30s',
    '-s',
    script,
    url,
    '--',
    bodyFile,
    ...Object.entries(headers).flat(),
  ])
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    requests: number
    us: number
    p50: number
    p99: number
    failed: number
  }
  process.stdout.write(
    JSON.stringify({
      rps: result.requests / (result.us / 1e6),
      p50: result.p50 / 1000,
      p99: result.p99 / 1000,
      failed: result.failed,
    }) + '\n',
  )
}
