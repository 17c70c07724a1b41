// The HTTP/1.1 server of the gateway's client port and the model server (node:http under the handler contract of
// src/http/server.ts), spoken to byte for byte over real sockets on 127.0.0.1. Hostile framing: test/http/hostile.test.ts.
import assert from 'node:assert/strict'
import {Agent, request} from 'node:http'
import {type Socket, connect} from 'node:net'

import {
  type ServerRequest,
  HttpServer,
  type RequestHandler,
  type ServerOptions,
  jsonAnswer,
} from '../../src/http/server.js'

interface Conversation {
  /** Everything the server wrote so far. */
  text: () => string
  write: (bytes: string) => void
  /** Resolves when the text holds `count` answers' status lines (or the server closed). */
  answers: (count: number) => Promise<string[]>
  closed: Promise<void>
  socket: Socket
}

describe('HTTP/1.1 server (gateway client port, model server)', function () {
  this.timeout(10_000)
  const servers: HttpServer[] = []
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy()
    for (const server of servers.splice(0)) {
      server.destroyAll()
      await server.close()
    }
  })

  /** An echo handler by default: the request as JSON. */
  const echo: RequestHandler = (req, respond) =>
    respond(jsonAnswer(200, {method: req.method, url: req.url, headers: req.headers, body: req.body.toString()}))

  /** The echo handler, counting the requests it was called with. */
  function countingEcho(): {handler: RequestHandler; handled: () => number} {
    let handled = 0
    return {
      handler: (req, respond) => {
        handled++
        echo(req, respond)
      },
      handled: () => handled,
    }
  }

  async function start(
    handler: RequestHandler = echo,
    options: Partial<ServerOptions> = {},
  ): Promise<{port: number; server: HttpServer}> {
    const server = new HttpServer({maxBodyBytes: 1024, ...options}, handler)
    servers.push(server)
    return {port: (await server.listen(0, '127.0.0.1')).port, server}
  }

  function talk(port: number): Promise<Conversation> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      sockets.push(socket)
      let text = ''
      const waiters: (() => void)[] = []
      const closed = new Promise<void>((done) => socket.on('close', () => done()))
      socket.on('data', (data: Buffer) => {
        text += data.toString('latin1')
        for (const wake of waiters.splice(0)) wake()
      })
      void closed.then(() => {
        for (const wake of waiters.splice(0)) wake()
      })
      socket.on('error', () => undefined)
      socket.once('connect', () =>
        resolve({
          text: () => text,
          write: (bytes) => socket.write(bytes),
          socket,
          closed,
          answers: async (count) => {
            const split = () => text.split(/(?=HTTP\/1\.1 \d{3} )/).filter(Boolean)
            while (
              split().filter((a) => !a.startsWith('HTTP/1.1 100')).length < count &&
              !socket.destroyed &&
              socket.readyState !== 'closed'
            )
              await new Promise<void>((wake) => waiters.push(wake))
            return split().filter((a) => !a.startsWith('HTTP/1.1 100'))
          },
        }),
      )
      socket.once('error', reject)
    })
  }

  const bodyOf = (answer: string) =>
    JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as {
      method: string
      url: string
      headers: string[]
      body: string
      error?: {code: string; message: string}
    }
  const statusOf = (answer: string) => Number(answer.slice(9, 12))

  it('reads method, target, headers (names in lower case) and body, and keeps the connection for the next request', async () => {
    const {port} = await start()
    const c = await talk(port)
    c.write('POST /v1/predict?x=1 HTTP/1.1\r\nHost: a\r\nX-Trace: abc\r\ncontent-length: 5\r\n\r\nhello')
    const [first] = await c.answers(1)
    assert.equal(statusOf(first), 200)
    assert.deepEqual(bodyOf(first), {
      method: 'POST',
      url: '/v1/predict?x=1',
      headers: ['host', 'a', 'x-trace', 'abc', 'content-length', '5'],
      body: 'hello',
    })
    assert.match(first, /\r\ncontent-length: \d+\r\n/)
    assert.match(first, /\r\ndate: .+ GMT\r\n/)
    assert.doesNotMatch(first, /connection: close/i)
    c.write('GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n')
    const answers = await c.answers(2)
    assert.deepEqual(bodyOf(answers[1]).url, '/healthz')
  })

  it('answers pipelined requests in the order they came, whatever order the handler answers them in', async () => {
    const {port} = await start((req, respond) =>
      setTimeout(() => respond(jsonAnswer(200, {url: req.url})), req.url === '/slow' ? 100 : 0),
    )
    const c = await talk(port)
    c.write(
      'GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /fast HTTP/1.1\r\nHost: a\r\n\r\nGET /last HTTP/1.1\r\nHost: a\r\n\r\n',
    )
    const answers = await c.answers(3)
    assert.deepEqual(
      answers.map((a) => bodyOf(a).url),
      ['/slow', '/fast', '/last'],
    )
  })

  it('reads a chunked body whole, and sends 100 Continue to a client that expects it before sending the body', async () => {
    const {port} = await start()
    const chunked = await talk(port)
    chunked.write(
      'POST /v1/predict HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n',
    )
    assert.equal(bodyOf((await chunked.answers(1))[0]).body, 'abcde')

    const waiting = await talk(port)
    waiting.write('POST /v1/predict HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\ncontent-length: 2\r\n\r\n')
    while (!waiting.text().includes('\r\n\r\n')) await new Promise((r) => setTimeout(r, 5))
    assert.equal(waiting.text(), 'HTTP/1.1 100 Continue\r\n\r\n')
    waiting.write('ok')
    assert.equal(bodyOf((await waiting.answers(1))[0]).body, 'ok')
  })

  it('closes after an answer when the request asks (HTTP/1.1 close, HTTP/1.0 by default), and keeps HTTP/1.0 keep-alive open', async () => {
    const {handler, handled} = countingEcho()
    const {port} = await start(handler)
    const closing = await talk(port)
    closing.write('GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\nHost: a\r\n\r\n')
    await closing.closed
    const answers = await closing.answers(1)
    assert.equal(answers.length, 1)
    assert.match(answers[0], /\r\nconnection: close\r\n/i)
    assert.equal(handled(), 1, 'nothing after "Connection: close" is read')

    const old = await talk(port)
    old.write('GET /a HTTP/1.0\r\n\r\n')
    await old.closed
    assert.match(old.text(), /^HTTP\/1\.1 200 OK\r\n/)

    const kept = await talk(port)
    kept.write('GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
    assert.match((await kept.answers(1))[0], /\r\nconnection: keep-alive\r\n/i)
    kept.write('GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
    assert.equal(bodyOf((await kept.answers(2))[1]).url, '/b')
  })

  it('puts a body that came in several reads together with the offset alignBody names on an 8-byte boundary', async () => {
    let seen: Buffer | undefined
    const {port} = await start(
      (req, respond) => {
        seen = req.body
        respond(jsonAnswer(200, {}))
      },
      {alignBody: (headers) => Number(headers[headers.indexOf('x-json-length') + 1])},
    )
    for (const jsonLength of [0, 3, 13]) {
      const c = await talk(port)
      c.write(
        `POST / HTTP/1.1\r\nHost: a\r\nx-json-length: ${jsonLength}\r\ncontent-length: 40\r\n\r\n${'a'.repeat(17)}`,
      )
      await new Promise((r) => setTimeout(r, 20))
      c.write('b'.repeat(23))
      await c.answers(1)
      assert.equal(seen!.toString(), 'a'.repeat(17) + 'b'.repeat(23))
      assert.equal((seen!.byteOffset + jsonLength) % 8, 0, `json length ${jsonLength}`)
    }
  })

  it('disconnects a client pipelining more than maxPipelined requests without waiting for their answers', async () => {
    const waiting: (() => void)[] = []
    const {handler, handled} = countingEcho()
    const {port} = await start((req, respond) => waiting.push(() => handler(req, respond)), {maxPipelined: 2})
    const within = await talk(port)
    within.write('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n')
    while (waiting.length < 2) await new Promise((r) => setTimeout(r, 5))
    for (const answer of waiting.splice(0)) answer()
    assert.deepEqual(
      (await within.answers(2)).map((a) => bodyOf(a).url),
      ['/1', '/2'],
    )
    const beyond = await talk(port)
    beyond.write(['/3', '/4', '/5'].map((path) => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`).join(''))
    await beyond.closed
    assert.equal(handled(), 2, 'the requests past the depth were never answered')
  })

  it('sends a text body as UTF-8 with its length in bytes, and answers refusals as the refusal option says', async () => {
    const {port} = await start(
      (_req, respond) => respond({status: 200, headers: ['content-type', 'text/plain'], body: 'né €'}),
      {
        maxBodyBytes: 4,
        refusal: (status, message, url) => ({
          status,
          headers: ['content-type', 'text/plain'],
          body: `${status} at ${url}: ${message}`,
        }),
      },
    )
    const c = await talk(port)
    c.write('GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /big HTTP/1.1\r\nHost: a\r\ncontent-length: 5\r\n\r\n')
    const [text, refused] = await c.answers(2)
    assert.match(text, /\r\ncontent-length: 7\r\n/)
    assert.equal(Buffer.from(text, 'latin1').subarray(-7).toString('utf8'), 'né €')
    assert.match(refused, /^HTTP\/1\.1 413 [^]*\r\n\r\n413 at \/big: the request body is larger than 4 bytes$/)
  })

  it('refuses, without calling the handler, what it will not read: with the status, a JSON error, and the connection closed', async () => {
    const {handler, handled} = countingEcho()
    const {port} = await start(handler, {maxBodyBytes: 10, maxHeaderBytes: 512})
    const cases: [string, number, RegExp][] = [
      ['POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 11\r\n\r\n', 413, /larger than 10 bytes/],
      [
        'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n',
        413,
        /larger than 10 bytes/,
      ],
      [
        'POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        400,
        /not valid HTTP\/1\.1/,
      ],
      ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', 400, /not valid HTTP\/1\.1/],
      ['POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 1x\r\n\r\n', 400, /not valid HTTP\/1\.1/],
      ['NOT HTTP AT ALL\r\n\r\n', 400, /not valid HTTP\/1\.1/],
      [`GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'x'.repeat(600)}\r\n\r\n`, 431, /larger than 512 bytes/],
    ]
    for (const [bytes, status, message] of cases) {
      const c = await talk(port)
      c.write(bytes)
      await c.closed
      const [answer] = await c.answers(1)
      assert.equal(statusOf(answer), status, bytes)
      assert.match(bodyOf(answer).error!.message, message)
      assert.match(answer, /\r\nconnection: close\r\n/i)
    }
    assert.equal(handled(), 0)
  })

  it('answers a refused request after the answers owed before it on the connection', async () => {
    const {port} = await start((req, respond) => setTimeout(() => echo(req, respond), 50), {maxBodyBytes: 10})
    const c = await talk(port)
    c.write('GET /first HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\ncontent-length: 99\r\n\r\n')
    await c.closed
    const answers = await c.answers(2)
    assert.deepEqual(answers.map(statusOf), [200, 413])
    assert.equal(bodyOf(answers[0]).url, '/first')
  })

  it('sends no body to a HEAD, with the length a GET would have, and the connection carries on', async () => {
    const {port} = await start((req, respond) =>
      respond({
        status: 200,
        headers: ['content-type', 'text/plain'],
        body: Buffer.alloc(0),
        headLength: req.method === 'HEAD' ? 42 : undefined,
      }),
    )
    const c = await talk(port)
    c.write('HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n')
    const [head, get] = await c.answers(2)
    assert.match(head, /\r\ncontent-length: 42\r\n[^]*\r\n\r\n$/)
    assert.match(get, /\r\ncontent-length: 0\r\n[^]*\r\n\r\n$/)
  })

  it('answers 408 to a request whose head arrives too slowly, and closes an idle keep-alive connection', async () => {
    const {port} = await start(echo, {headersTimeoutMs: 100, keepAliveTimeoutMs: 150})
    const slow = await talk(port)
    slow.write('GET / HTTP/1.1\r\nHost: a\r\n')
    await slow.closed
    assert.equal(statusOf((await slow.answers(1))[0]), 408)

    // Kept open after an answer (a second request is answered), then closed by the server with nothing more sent.
    const idle = await talk(port)
    idle.write('GET /a HTTP/1.1\r\nHost: a\r\n\r\n')
    await idle.answers(1)
    idle.write('GET /b HTTP/1.1\r\nHost: a\r\n\r\n')
    assert.equal(bodyOf((await idle.answers(2))[1]).url, '/b')
    await idle.closed
    assert.equal((await idle.answers(3)).length, 2)
  })

  it('drops a client that keeps its side open after the server ended the connection, so close() completes', async () => {
    const {port, server} = await start(echo, {keepAliveTimeoutMs: 150})
    const stubborn = connect({port, host: '127.0.0.1', allowHalfOpen: true})
    sockets.push(stubborn)
    let text = ''
    stubborn.on('data', (data: Buffer) => (text += data.toString('latin1')))
    stubborn.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')
    await new Promise<void>((resolve) => stubborn.once('end', () => resolve()))
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/)
    // The client's side stays open (half-open, its choice); the server's closes, or close() would never complete.
    await server.close()
  })

  it('answers 500 when the handler throws, and the connection carries on', async () => {
    const {port} = await start((req, respond) => {
      if (req.url === '/boom') throw new Error('boom')
      echo(req, respond)
    })
    const c = await talk(port)
    c.write('GET /boom HTTP/1.1\r\nHost: a\r\n\r\nGET /fine HTTP/1.1\r\nHost: a\r\n\r\n')
    const answers = await c.answers(2)
    assert.deepEqual(answers.map(statusOf), [500, 200])
    assert.equal(bodyOf(answers[0]).error!.message, 'boom')
  })

  it('close(): idle connections close at once; a request in flight is answered with "connection: close"; new connections are refused', async () => {
    let release: (() => void) | undefined
    const {port, server} = await start((req, respond) => {
      release = () => echo(req, respond)
    })
    const idle = await talk(port)
    const busy = await talk(port)
    busy.write('GET /busy HTTP/1.1\r\nHost: a\r\n\r\n')
    while (!release) await new Promise((r) => setTimeout(r, 5))
    const closed = server.close()
    await idle.closed
    release()
    await busy.closed
    const [answer] = await busy.answers(1)
    assert.equal(bodyOf(answer).url, '/busy')
    assert.match(answer, /\r\nconnection: close\r\n/i)
    await closed
    await assert.rejects(talk(port), /ECONNREFUSED/)
  })

  it('serves node:http clients on a keep-alive agent, one connection for many requests', async () => {
    const seen = new Set<string>()
    const {port} = await start((req: ServerRequest, respond) => respond(jsonAnswer(201, {body: req.body.toString()})))
    const agent = new Agent({keepAlive: true, maxSockets: 1})
    for (let i = 0; i < 5; i++) {
      const {status, body, socket} = await new Promise<{status: number; body: string; socket: string}>(
        (resolve, reject) => {
          const req = request(
            {
              port,
              host: '127.0.0.1',
              method: 'POST',
              path: '/v1/predict',
              agent,
              headers: {'content-type': 'application/json'},
            },
            (res) => {
              const local = `${res.socket.localPort}`
              let text = ''
              res.setEncoding('utf8')
              res.on('data', (chunk: string) => (text += chunk))
              res.on('end', () => resolve({status: res.statusCode ?? 0, body: text, socket: local}))
            },
          )
          req.on('error', reject)
          req.end(`{"i":${i}}`)
        },
      )
      assert.equal(status, 201)
      assert.deepEqual(JSON.parse(body), {body: `{"i":${i}}`})
      seen.add(socket)
    }
    agent.destroy()
    assert.equal(seen.size, 1)
  })
})
