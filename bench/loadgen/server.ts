// A fixed-latency HTTP endpoint for the load generator bench, in its own process: answers every POST after DELAY_MS.
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'

const delay = Number(process.argv[2] ?? 0)
const body = '{"predictions":[{"probability":0.1,"label":"repaid"}]}'
const server = createServer((req, res) => {
  req.resume()
  req.on('end', () => {
    const reply = () => {
      res.writeHead(200, {'content-type': 'application/json', 'content-length': body.length})
      res.end(body)
    }
    if (delay > 0) setTimeout(reply, delay)
    else reply()
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
