// The load generator, in its own process so it does not share the server's event loop. Prints one JSON line.
// Throughput comes from autocannon; at concurrency 1 a keep-alive loop times each request in microseconds (autocannon rounds to ms).
// An optional fifth argument is a JSON object of request headers (a binary tensor data body needs its own).
import {readFileSync} from 'node:fs'
import {Agent, request} from 'node:http'

import autocannon from 'autocannon'

const [url, bodyFile, connections, seconds, headersJson] = process.argv.slice(2)
const body = readFileSync(bodyFile)
const headers: Record<string, string> = {'content-type': 'application/json', ...(headersJson ? JSON.parse(headersJson) : {})}

if (Number(connections) === 1) {
  const agent = new Agent({keepAlive: true, maxSockets: 1})
  const latencies: number[] = []
  let failed = 0
  const end = performance.now() + Number(seconds) * 1000
  while (performance.now() < end) {
    const started = performance.now()
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(url, {method: 'POST', agent, headers: {...headers, 'content-length': String(body.length)}}, (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      })
      req.on('error', reject)
      req.end(body)
    })
    latencies.push(performance.now() - started)
    if (status !== 200) failed++
  }
  agent.destroy()
  latencies.sort((a, b) => a - b)
  process.stdout.write(JSON.stringify({rps: latencies.length / Number(seconds), p50: latencies[Math.floor(latencies.length / 2)], p99: latencies[Math.floor(latencies.length * 0.99)], failed}) + '\n')
} else {
  const result = await autocannon({url, method: 'POST', headers, body, connections: Number(connections), duration: Number(seconds)})
  process.stdout.write(JSON.stringify({rps: result.requests.total / Number(seconds), p50: result.latency.p50, p99: result.latency.p99, failed: result.non2xx + result.errors + result.timeouts}) + '\n')
}
