// The lean HTTP/1.1 client the gateway uses for its hop to model servers, against node:http servers on 127.0.0.1.
import assert from 'node:assert/strict'
import {type IncomingMessage, type Server, type ServerResponse, createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {performance} from 'node:perf_hooks'

import {ConnectionPool, type PoolOptions, type RawAnswer, requestFor} from '../../src/http/client.js'
import {HttpServer, jsonAnswer} from '../../src/http/server.js'

interface Result {
  status: number
  error?: Error & {code?: string}
  answer?: RawAnswer
}

describe('HTTP/1.1 client (gateway hop)', function () {
  this.timeout(20_000)
  const servers: Server[] = []
  const pools: ConnectionPool[] = []
  afterEach(() => {
    for (const p of pools.splice(0)) p.close()
    for (const s of servers.splice(0)) {
      s.closeAllConnections()
      s.close()
    }
  })

  async function start(
    handler: (req: IncomingMessage, res: ServerResponse, body: string) => void,
    size = 4,
    options: PoolOptions = {collect: true},
  ): Promise<{pool: ConnectionPool; server: Server; connections: () => number}> {
    let connections = 0
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => (body += chunk.toString()))
      req.on('end', () => handler(req, res, body))
    })
    server.on('connection', () => connections++)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
    const pool = new ConnectionPool(
      new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`),
      size,
      options,
    )
    pools.push(pool)
    return {pool, server, connections: () => connections}
  }

  function call(
    pool: ConnectionPool,
    method: string,
    path: string,
    headers: string[] = [],
    body = '',
  ): Promise<Result> {
    return new Promise((resolve) =>
      pool.send(
        requestFor(pool.origin, method, path, headers, Buffer.from(body)),
        () => performance.now(),
        (status, error, answer) => resolve({status, error, answer}),
        method === 'HEAD',
      ),
    )
  }

  it('sends method, path, headers and body as given, and returns status, every header value and the body', async () => {
    const {pool} = await start((req, res, body) => {
      res.setHeader('set-cookie', ['a=1', 'b=2'])
      res.writeHead(201, {'content-type': 'application/json'})
      res.end(
        JSON.stringify({
          method: req.method,
          url: req.url,
          host: req.headers.host,
          trace: req.headers['x-trace'],
          accept: req.headers.accept,
          length: req.headers['content-length'],
          body,
        }),
      )
    })
    const {status, error, answer} = await call(
      pool,
      'POST',
      '/v1/predict?debug=1',
      ['x-trace', 'abc', 'accept', 'application/json', 'accept', 'text/plain'],
      '{"instances":[1]}',
    )
    assert.equal(error, undefined)
    assert.equal(status, 201)
    const echoed = JSON.parse(answer!.body.toString()) as Record<string, string>
    assert.deepEqual(echoed, {
      method: 'POST',
      url: '/v1/predict?debug=1',
      host: pool.origin.host,
      trace: 'abc',
      accept: 'application/json, text/plain',
      length: '17',
      body: '{"instances":[1]}',
    })
    const cookies = answer!.headers
      .filter((_, i) => i % 2 === 0)
      .map((name, i) => [name.toLowerCase(), answer!.headers[i * 2 + 1]])
      .filter(([name]) => name === 'set-cookie')
    assert.deepEqual(cookies, [
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
    ])
  })

  it('answers a HEAD without waiting for a body its content-length announces, and the connection carries on', async () => {
    const {pool, connections} = await start((req, res) => {
      res.writeHead(200, {'content-type': 'application/json', 'content-length': '12'})
      res.end(req.method === 'HEAD' ? undefined : '{"ok":true}\n')
    }, 1)
    const head = await call(pool, 'HEAD', '/healthz')
    assert.equal(head.status, 200)
    assert.equal(head.answer!.body.length, 0)
    const get = await call(pool, 'GET', '/healthz')
    assert.equal(get.answer!.body.toString(), '{"ok":true}\n')
    assert.equal(connections(), 1)
  })

  it('replaces a connection idle past idleMs before the server closes it, and one the server closed while idle', async () => {
    const own = await start((_req, res) => res.end('ok'), 1, {collect: true, idleMs: 100})
    own.server.keepAliveTimeout = 10_000
    assert.equal((await call(own.pool, 'GET', '/')).status, 200)
    await new Promise((resolve) => setTimeout(resolve, 250))
    assert.equal((await call(own.pool, 'GET', '/')).status, 200)
    assert.equal(own.connections(), 2, 'the pool let go of the idle connection itself')

    const theirs = await start((_req, res) => res.end('ok'), 1, {collect: true})
    assert.equal((await call(theirs.pool, 'GET', '/')).status, 200)
    theirs.server.closeIdleConnections()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const again = await call(theirs.pool, 'GET', '/')
    assert.equal(again.error, undefined)
    assert.equal(again.status, 200)
    assert.equal(theirs.connections(), 2)
  })

  it('fails a request with no answer after timeoutMs, and close() fails what is in flight or waiting', async () => {
    const {pool} = await start(() => undefined, 1, {collect: true, timeoutMs: 200})
    const started = performance.now()
    const timedOut = await call(pool, 'POST', '/v1/predict', [], '{}')
    assert.equal(timedOut.error?.code, 'TIMEOUT')
    assert.ok(performance.now() - started < 2000, 'the sweep fails it soon after the timeout')
    const inFlight = call(pool, 'POST', '/v1/predict', [], '{}')
    const waiting = call(pool, 'POST', '/v1/predict', [], '{}')
    await new Promise((resolve) => setTimeout(resolve, 50))
    pool.close()
    for (const result of await Promise.all([inFlight, waiting])) assert.equal(result.error?.code, 'ECONNRESET')
  })

  it('end() lets answers already on their way arrive, refuses new requests, then closes', async () => {
    const {pool, server} = await start((_req, res) => setTimeout(() => res.end('late'), 100), 2)
    const inFlight = call(pool, 'GET', '/')
    await new Promise((resolve) => setTimeout(resolve, 20))
    pool.end()
    const refused = await call(pool, 'GET', '/')
    assert.equal(refused.error?.code, 'ECONNRESET')
    const answered = await inFlight
    assert.equal(answered.error, undefined)
    assert.equal(answered.answer!.body.toString(), 'late')
    await new Promise((resolve) => setTimeout(resolve, 50))
    const open = await new Promise<number>((resolve, reject) =>
      server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
    )
    assert.equal(open, 0, 'the pool closed its connection once the answer was in')
  })

  it('names a refused connection ECONNREFUSED, which the gateway retries elsewhere', async () => {
    const {pool, server} = await start((_req, res) => res.end('ok'), 1)
    server.close()
    server.closeAllConnections()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const refused = await call(pool, 'GET', '/')
    assert.equal(refused.error?.code, 'ECONNREFUSED')
  })

  describe('pipelining', () => {
    const lean: HttpServer[] = []
    afterEach(async () => {
      for (const server of lean.splice(0)) {
        server.destroyAll()
        await server.close()
      }
    })

    /** The lean server (which reads pipelined requests and answers them in order), answering each after 10 ms, never /hang. */
    async function pipelined(
      pipeline: number,
      options: PoolOptions = {},
    ): Promise<{pool: ConnectionPool; mostPending: () => number}> {
      let pending = 0
      let most = 0
      const server = new HttpServer({maxBodyBytes: 1024}, (req, respond) => {
        most = Math.max(most, ++pending)
        if (req.url === '/hang') return
        setTimeout(() => {
          pending--
          respond(jsonAnswer(200, {url: req.url}))
        }, 10)
      })
      lean.push(server)
      const {port} = await server.listen(0, '127.0.0.1')
      const pool = new ConnectionPool(new URL(`http://127.0.0.1:${port}`), 1, {collect: true, pipeline, ...options})
      pools.push(pool)
      return {pool, mostPending: () => most}
    }

    it('sends up to `pipeline` requests on a connection before their answers, and matches each answer to its request', async () => {
      for (const depth of [1, 4]) {
        const {pool, mostPending} = await pipelined(depth)
        const results = await Promise.all(
          Array.from({length: 10}, (_, i) => call(pool, i === 5 ? 'HEAD' : 'GET', `/r${i}`)),
        )
        assert.deepEqual(
          results.map((r) => r.status),
          new Array(10).fill(200),
        )
        assert.deepEqual(
          results.map((r, i) => (i === 5 ? r.answer!.body.length : JSON.parse(r.answer!.body.toString()).url)),
          ['/r0', '/r1', '/r2', '/r3', '/r4', 0, '/r6', '/r7', '/r8', '/r9'],
        )
        assert.equal(pool.connections.length, 1)
        assert.equal(mostPending(), depth)
      }
    })

    it('fails the requests pipelined behind an answer that closes the connection, as a reset, and carries on with a new one', async () => {
      const {pool} = await pipelined(4)
      const results = await Promise.all([
        call(pool, 'GET', '/a'),
        call(pool, 'GET', '/b', ['connection', 'close']),
        call(pool, 'GET', '/c'),
        call(pool, 'GET', '/d'),
      ])
      assert.deepEqual(
        results.map((r) => r.status),
        [200, 200, 0, 0],
      )
      assert.deepEqual(
        results.slice(2).map((r) => r.error?.code),
        ['ECONNRESET', 'ECONNRESET'],
      )
      assert.equal((await call(pool, 'GET', '/e')).status, 200)
    })

    it('fails every request pipelined on a connection that times out, then serves the next on a new one', async () => {
      const {pool} = await pipelined(4, {timeoutMs: 200})
      const hung = await Promise.all([1, 2, 3].map(() => call(pool, 'GET', '/hang')))
      assert.deepEqual(
        hung.map((r) => r.error?.code),
        ['TIMEOUT', 'TIMEOUT', 'TIMEOUT'],
      )
      const next = await Promise.all([call(pool, 'GET', '/x'), call(pool, 'GET', '/y')])
      assert.deepEqual(
        next.map((r) => JSON.parse(r.answer!.body.toString()).url),
        ['/x', '/y'],
      )
      assert.equal(pool.connections.length, 1)
    })
  })
})
