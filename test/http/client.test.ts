// The client (undici pools) the gateway uses for its hop to model servers, against node:http servers on 127.0.0.1.
import assert from 'node:assert/strict'
import {type IncomingMessage, type Server, type ServerResponse, createServer} from 'node:http'
import {type AddressInfo, type Socket, createServer as createTcpServer} from 'node:net'

import {type Answer, Upstream, type UpstreamOptions} from '../../src/http/client.js'
import {HttpServer, jsonAnswer} from '../../src/http/server.js'

interface Result {
  status: number
  error?: Error & {code?: string}
  answer?: Answer
}

describe('HTTP/1.1 client (gateway hop)', function () {
  this.timeout(20_000)
  const servers: Server[] = []
  const pools: Upstream[] = []
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()))
    for (const s of servers.splice(0)) {
      s.closeAllConnections()
      s.close()
    }
  })

  async function start(
    handler: (req: IncomingMessage, res: ServerResponse, body: string) => void,
    size = 4,
    options: Partial<UpstreamOptions> = {},
  ): Promise<{pool: Upstream; server: Server; connections: () => number}> {
    let connections = 0
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => (body += chunk.toString()))
      req.on('end', () => handler(req, res, body))
    })
    server.on('connection', () => connections++)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
    const pool = new Upstream(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), {
      connections: size,
      ...options,
    })
    pools.push(pool)
    return {pool, server, connections: () => connections}
  }

  function call(pool: Upstream, method: string, path: string, headers: string[] = [], body = ''): Promise<Result> {
    return new Promise((resolve) =>
      pool.send({method, path, headers, body: body ? Buffer.from(body) : undefined}, (status, error, answer) =>
        resolve({status, error, answer}),
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

  it('answers a HEAD without waiting for a body its content-length announces, and the pool carries on', async () => {
    const {pool, connections} = await start((req, res) => {
      res.writeHead(200, {'content-type': 'application/json', 'content-length': '12'})
      res.end(req.method === 'HEAD' ? undefined : '{"ok":true}\n')
    }, 1)
    const head = await call(pool, 'HEAD', '/healthz')
    assert.equal(head.status, 200)
    assert.equal(head.answer!.body.length, 0)
    const get = await call(pool, 'GET', '/healthz')
    assert.equal(get.answer!.body.toString(), '{"ok":true}\n')
    // undici does not reuse a connection after a HEAD (a server may send the body anyway).
    assert.ok(connections() <= 2)
  })

  it('replaces a connection idle past idleMs before the server closes it, and one the server closed while idle', async () => {
    const own = await start((_req, res) => res.end('ok'), 1, {idleMs: 100})
    own.server.keepAliveTimeout = 10_000
    assert.equal((await call(own.pool, 'GET', '/')).status, 200)
    await new Promise((resolve) => setTimeout(resolve, 250))
    assert.equal((await call(own.pool, 'GET', '/')).status, 200)
    assert.equal(own.connections(), 2, 'the pool let go of the idle connection itself')

    const theirs = await start((_req, res) => res.end('ok'), 1)
    assert.equal((await call(theirs.pool, 'GET', '/')).status, 200)
    theirs.server.closeIdleConnections()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const again = await call(theirs.pool, 'GET', '/')
    assert.equal(again.error, undefined)
    assert.equal(again.status, 200)
    assert.equal(theirs.connections(), 2)
  })

  it('fails a request with no answer after timeoutMs, and close() fails what is in flight or waiting', async () => {
    const {pool} = await start(() => undefined, 1, {timeoutMs: 200})
    const timedOut = await call(pool, 'POST', '/v1/predict', [], '{}')
    assert.equal(timedOut.error?.code, 'TIMEOUT')
    const inFlight = call(pool, 'POST', '/v1/predict', [], '{}')
    const waiting = call(pool, 'POST', '/v1/predict', [], '{}')
    await new Promise((resolve) => setTimeout(resolve, 50))
    void pool.close()
    for (const result of await Promise.all([inFlight, waiting])) assert.equal(result.error?.code, 'ECONNRESET')
  })

  it('end() lets answers already on their way arrive, refuses new requests, then closes', async () => {
    const {pool, server} = await start((_req, res) => setTimeout(() => res.end('late'), 100), 2)
    const inFlight = call(pool, 'GET', '/')
    await new Promise((resolve) => setTimeout(resolve, 20))
    void pool.end()
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

    /** The model server's HTTP front (which reads pipelined requests and answers them in order), answering each after 10 ms, never /hang. */
    async function pipelined(
      pipelining: number,
      options: Partial<UpstreamOptions> = {},
    ): Promise<{pool: Upstream; mostPending: () => number; connections: () => number}> {
      let pending = 0
      let most = 0
      let connections = 0
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
      ;(server as unknown as {server: Server}).server.on('connection', () => connections++)
      const pool = new Upstream(new URL(`http://127.0.0.1:${port}`), {connections: 1, pipelining, ...options})
      pools.push(pool)
      return {pool, mostPending: () => most, connections: () => connections}
    }

    it('sends up to `pipeline` requests on a connection before their answers, and matches each answer to its request', async () => {
      for (const depth of [1, 4]) {
        const {pool, mostPending, connections} = await pipelined(depth)
        const results = await Promise.all(
          Array.from({length: 10}, (_, i) => call(pool, i === 5 ? 'POST' : 'GET', `/r${i}`)),
        )
        assert.deepEqual(
          results.map((r) => r.status),
          new Array(10).fill(200),
        )
        assert.deepEqual(
          results.map((r) => (JSON.parse(r.answer!.body.toString()) as {url: string}).url),
          ['/r0', '/r1', '/r2', '/r3', '/r4', '/r5', '/r6', '/r7', '/r8', '/r9'],
        )
        assert.equal(connections(), 1)
        assert.equal(mostPending(), depth)
      }
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
    })
  })

  describe('hostile answers', () => {
    const raw: ReturnType<typeof createTcpServer>[] = []
    afterEach(() => {
      for (const server of raw.splice(0)) server.close()
    })

    /** A TCP server writing `reply` to every connection once a request arrived. */
    async function rawPool(reply: (socket: Socket) => void, options: Partial<UpstreamOptions> = {}): Promise<Upstream> {
      const server = createTcpServer((socket) => {
        socket.on('error', () => undefined)
        socket.once('data', () => reply(socket))
      })
      raw.push(server)
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const pool = new Upstream(new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`), {
        connections: 1,
        timeoutMs: 2000,
        ...options,
      })
      pools.push(pool)
      return pool
    }

    it('fails an answer with a negative, signed or non-hex chunk size, or a bare LF, at once', async () => {
      for (const framing of ['-6', '+6', '0x6', 'zz']) {
        const pool = await rawPool((socket) =>
          socket.write(`HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n${framing}\r\nabcdef\r\n0\r\n\r\n`),
        )
        const result = await call(pool, 'GET', '/')
        assert.equal(result.status, 0, framing)
        assert.notEqual(result.error?.code, 'TIMEOUT', framing)
      }
      const bareLf = await rawPool((socket) => socket.write('HTTP/1.1 200 OK\ncontent-length: 2\n\nok'))
      assert.equal((await call(bareLf, 'GET', '/')).status, 0)
    })

    it('fails an answer whose head never ends, or whose body passes maxAnswerBytes, without holding it all', async () => {
      const endless = await rawPool((socket) => {
        socket.write('HTTP/1.1 200 OK\r\n')
        const line = Buffer.from(`x-endless: ${'a'.repeat(1000)}\r\n`)
        const more = () => socket.write(line, (error) => !error && !socket.destroyed && setImmediate(more))
        more()
      })
      const head = await call(endless, 'GET', '/')
      assert.equal(head.status, 0)
      assert.match(head.error!.message, /header/i)
      const big = await rawPool(
        (socket) => socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n${'x'.repeat(100_000)}`),
        {maxAnswerBytes: 1000},
      )
      const body = await call(big, 'GET', '/')
      assert.equal(body.status, 0)
      assert.equal(body.error?.code, 'UND_ERR_RES_EXCEEDED_MAX_SIZE')
    })
  })
})
