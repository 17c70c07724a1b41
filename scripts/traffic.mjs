#!/usr/bin/env node
// Demo traffic: posts the example's golden records to URL/v1/predict with a few concurrent clients until killed or DURATION s pass.
import {readFileSync} from 'node:fs'

const [url, file, duration = '60', clients = '4'] = process.argv.slice(2)
const records = readFileSync(file, 'utf8')
  .trim()
  .split('\n')
  .flatMap((line) => JSON.parse(line).records)
const until = Date.now() + Number(duration) * 1000
const counts = {}
let stop = false
process.on('SIGTERM', () => (stop = true))

async function client(offset) {
  for (let i = offset; !stop && Date.now() < until; i++) {
    try {
      const response = await fetch(`${url}/v1/predict`, {
        method: 'POST',
        headers: {'content-type': 'application/json', 'x-user': `user-${i % 97}`},
        body: JSON.stringify({instances: [records[i % records.length]]}),
      })
      const key = `${response.status} ${response.headers.get('x-model-version')}`
      counts[key] = (counts[key] ?? 0) + 1
      await response.arrayBuffer()
    } catch {
      counts.failed = (counts.failed ?? 0) + 1
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

await Promise.all(Array.from({length: Number(clients)}, (_, i) => client(i)))
console.log(
  `traffic: ${Object.entries(counts)
    .map(([k, n]) => `${n} × ${k}`)
    .join(', ')}`,
)
