// Hostile HTTP/1.1 from raw sockets against a real deploy: the gateway's client port and the `mlops serve` child behind it.
// Each case gets node:http's refusal (or a closed connection), the server answers a good request within a second after,
// and what the gateway forwards is read by the model server as one request, the one the gateway read.
import assert from 'node:assert/strict'
import {readFile, writeFile} from 'node:fs/promises'
import {type Socket, connect} from 'node:net'
import {join} from 'node:path'

import {request} from 'undici'

import {deploy} from '../../src/rollout/deploy.js'
import {deployPaths} from '../../src/rollout/state.js'
import type {GatewayInfo, GatewayStatus} from '../../src/targets/local/gateway.js'
import {type Project, XGB, XGB_BODY, project} from '../rollout/helpers.js'

const MAX_CONNECTIONS = 40
const HEAD = 'POST /v1/predict HTTP/1.1\r\nHost: a\r\ncontent-type: application/json\r\n'
const chunked = (sizeLine: string) => `${HEAD}transfer-encoding: chunked\r\n\r\n${sizeLine}\r\n${XGB_BODY}\r\n0\r\n\r\n`
const withHeader = (line: string) => `${HEAD}${line}\r\ncontent-length: ${XGB_BODY.length}\r\n\r\n${XGB_BODY}`

/** Each class of the issue: the bytes, and the status node:http answers (undefined: the connection closes unanswered). */
const CASES: {name: string; bytes: string; status: number}[] = [
  {name: 'negative chunk size', bytes: chunked('-6'), status: 400},
  {name: 'signed chunk size', bytes: chunked('+17'), status: 400},
  {name: '0x-prefixed chunk size', bytes: chunked('0x17'), status: 400},
  {name: 'non-hex chunk size', bytes: chunked('zz'), status: 400},
  {name: 'oversized chunk size', bytes: chunked('f'.repeat(40)), status: 400},
  {name: 'byte above 0x7F in a header name', bytes: withHeader('x-n\x8aame: 1'), status: 400},
  {name: 'bare LF', bytes: `POST /v1/predict HTTP/1.1\nHost: a\ncontent-length: 0\n\n`, status: 400},
  {name: 'obs-fold', bytes: withHeader('x-folded: a\r\n b'), status: 400},
  {name: 'whitespace before the colon', bytes: `${HEAD}transfer-encoding : chunked\r\n\r\n0\r\n\r\n`, status: 400},
  {name: 'missing colon', bytes: withHeader('x-no-colon'), status: 400},
  {name: 'NUL in a value', bytes: withHeader('x-nul: a\0b'), status: 400},
  {name: 'CTL in a value', bytes: withHeader('x-ctl: a\x01b'), status: 400},
  {name: 'CTL in the target', bytes: `GET /v2/\x01health HTTP/1.1\r\nHost: a\r\n\r\n`, status: 400},
  {name: 'unknown HTTP version 1.2', bytes: `GET /v2 HTTP/1.2\r\nHost: a\r\n\r\n`, status: 400},
  {name: 'unknown HTTP version 3.0', bytes: `GET /v2 HTTP/3.0\r\nHost: a\r\n\r\n`, status: 400},
  {name: 'HTTP/1.1 without Host', bytes: `GET /v2 HTTP/1.1\r\n\r\n`, status: 400},
  {name: 'Content-Length and Transfer-Encoding', bytes: withHeader('transfer-encoding: chunked'), status: 400},
  {name: 'body past max_body_mb', bytes: `${HEAD}content-length: ${2 * 1024 * 1024}\r\n\r\n`, status: 413},
  {name: 'head past 16 KiB', bytes: withHeader(`x-big: ${'a'.repeat(20_000)}`), status: 431},
]

/** Bytes that never end, written until the server answers or closes: the status it answered. */
const ENDLESS: {name: string; start: string; more: string; status: number}[] = [
  {name: 'endless chunk-size line', start: `${HEAD}transfer-encoding: chunked\r\n\r\n`, more: '0', status: 431},
  {name: 'endless chunk extension', start: `${HEAD}transfer-encoding: chunked\r\n\r\n1;`, more: 'e', status: 413},
  {
    name: 'endless trailers',
    start: `${HEAD}transfer-encoding: chunked\r\n\r\n0\r\n`,
    more: 'x-trailer: aaaaaaaaaa\r\n',
    status: 431,
  },
]

interface Exchange {
  status?: number
  text: string
  /** The server closed the connection (rather than the 10 s passing). */
  closed: boolean
}

/** Writes `bytes` (then `more` over and over, when given) and reads until the server closes or 10 s pass. */
function exchange(port: number, bytes: string, more?: string): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(text)
      resolve({status: status ? Number(status[1]) : undefined, text, closed})
    }
    const timer = setTimeout(() => finish(false), 10_000)
    socket.on('data', (data: Buffer) => (text += data.toString('latin1')))
    socket.on('error', () => finish(true))
    socket.on('close', () => finish(true))
    socket.write(Buffer.from(bytes, 'latin1'))
    if (more) {
      const block = Buffer.from(more.repeat(Math.ceil(4096 / more.length)), 'latin1')
      let sent = 0
      const write = () => {
        // 64 MB is far past any limit: a server still reading then has none.
        if (done || text || sent > 64 * 1024 * 1024) return
        sent += block.length
        socket.write(block, (error) => !error && setImmediate(write))
      }
      write()
    }
  })
}

/** A good prediction, answered within a second: the server is not wedged. */
async function good(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await request(`${url}/v1/predict`, {
    method: 'POST',
    headers: {'content-type': 'application/json', ...headers},
    body: XGB_BODY,
    headersTimeout: 1000,
    bodyTimeout: 1000,
    reset: true,
  })
  await res.body.dump()
  return res.statusCode
}

/** The model server's count of /v1/predict requests by status, from its /metrics. */
async function predictions(url: string, headers: Record<string, string>): Promise<Record<string, number>> {
  const res = await request(`${url}/metrics`, {headers})
  const text = await res.body.text()
  const counts: Record<string, number> = {}
  for (const m of text.matchAll(/^mlops_requests_total\{([^}]*)\} (\d+)/gm)) {
    if (!m[1].includes('route="/v1/predict"')) continue
    const status = /status="(\d+)"/.exec(m[1])![1]
    counts[status] = (counts[status] ?? 0) + Number(m[2])
  }
  return counts
}

describe('hostile HTTP/1.1 against mlops serve and the gateway client port', function () {
  this.timeout(120_000)
  let p: Project
  const targets: {name: string; url: string; port: number; headers: Record<string, string>}[] = []
  let modelServer = ''
  /** The gateway's model servers answer only requests carrying its token. */
  let asGateway: Record<string, string> = {}

  before(async () => {
    p = await project()
    const config = JSON.parse(await readFile(join(p.dir, 'mlops.yaml'), 'utf8')) as Record<string, unknown>
    config.serving = {max_connections: MAX_CONNECTIONS, max_body_mb: 1, workers: 1}
    await writeFile(join(p.dir, 'mlops.yaml'), JSON.stringify(config))
    await deploy({dir: p.dir, ref: '1.0.0', model: XGB, stage: 'full'})
    const info = JSON.parse(await readFile(deployPaths(p.dir).gateway, 'utf8')) as GatewayInfo
    const res = await request(`http://127.0.0.1:${info.controlPort}/v1/status`, {
      headers: {authorization: `Bearer ${info.token}`},
    })
    const status = (await res.body.json()) as GatewayStatus
    modelServer = status.servers[0].url!
    asGateway = {'x-mlops-gateway-token': info.upstreamToken}
    targets.push(
      {name: 'mlops serve', url: modelServer, port: Number(new URL(modelServer).port), headers: asGateway},
      {name: 'gateway', url: p.url, port: p.port, headers: {}},
    )
  })
  after(async () => p?.cleanup())

  for (const which of ['mlops serve', 'gateway']) {
    describe(which, () => {
      const target = () => targets.find((t) => t.name === which)!

      for (const c of CASES)
        it(`${c.name}: ${c.status}, then a good request is answered`, async () => {
          const {status, text} = await exchange(target().port, c.bytes)
          assert.equal(status, c.status, text.slice(0, 300))
          assert.ok(text.length < 2000, 'the refusal quotes nothing long of what was sent')
          assert.equal(await good(target().url, target().headers), 200)
        })

      for (const c of ENDLESS)
        it(`${c.name}: ${c.status} (or a closed connection) without reading it all, then a good request is answered`, async () => {
          const {status, text, closed} = await exchange(target().port, c.start, c.more)
          // Closed while the client still writes, the answer may be lost to the reset: a closed connection is an answer too.
          if (status === undefined) assert.ok(closed, 'the server answered or closed')
          else assert.equal(status, c.status, text.slice(0, 300))
          assert.equal(await good(target().url, target().headers), 200)
        })

      it('many slow connections dribbling their heads: a good request is still answered', async () => {
        const slow: Socket[] = []
        const timer = setInterval(() => {
          for (const socket of slow) socket.write('x')
        }, 100)
        try {
          for (let i = 0; i < MAX_CONNECTIONS / 2; i++) {
            const socket = connect(target().port, '127.0.0.1')
            socket.on('error', () => undefined)
            socket.write(`${HEAD}x-slow: `)
            slow.push(socket)
          }
          await new Promise((resolve) => setTimeout(resolve, 300))
          assert.equal(await good(target().url, target().headers), 200)
        } finally {
          clearInterval(timer)
          for (const socket of slow) socket.destroy()
        }
      })

      it(`past serving.max_connections (${MAX_CONNECTIONS}) a new connection is closed, and served again once they close`, async () => {
        const held: Socket[] = []
        try {
          for (let i = 0; i < MAX_CONNECTIONS; i++) {
            const socket = connect(target().port, '127.0.0.1')
            socket.on('error', () => undefined)
            held.push(socket)
            await new Promise((resolve) => socket.once('connect', resolve))
          }
          // The server has counted them all once it answers one of them.
          held[0].write('GET /v2/health/live HTTP/1.1\r\nHost: a\r\n\r\n')
          await new Promise((resolve) => held[0].once('data', resolve))
          await assert.rejects(good(target().url, target().headers))
        } finally {
          for (const socket of held) socket.destroy()
        }
        await new Promise((resolve) => setTimeout(resolve, 100))
        assert.equal(await good(target().url, target().headers), 200)
      })
    })
  }

  it('a header value with bytes above 0x7F is forwarded by the gateway as one request, read as the gateway read it', async () => {
    const before = await predictions(modelServer, asGateway)
    // 0x8A read as ASCII was a line feed: the old server split this request in two.
    const {status} = await exchange(targets[1].port, withHeader('x-request-id: a\x8a\x8abc\r\nconnection: close'))
    assert.equal(status, 200)
    const after = await predictions(modelServer, asGateway)
    assert.equal((after['200'] ?? 0) - (before['200'] ?? 0), 1, 'one prediction reached the model server')
    assert.equal(after['400'] ?? 0, before['400'] ?? 0, 'the model server refused nothing the gateway forwarded')
  })
})
