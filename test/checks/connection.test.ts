// The load generator's own HTTP/1.1 client against real servers on 127.0.0.1: the answer shapes servers send (chunked,
// closed connections, no length) count as answers, and broken ones fail with the right kind instead of hanging.
import assert from 'node:assert/strict'
import {createServer as createHttpServer} from 'node:http'
import {type AddressInfo, type Server, type Socket, createServer as createTcpServer} from 'node:net'

import type {LoadJob} from '../../src/checks/load/protocol.js'
import {runLoadPhase} from '../../src/checks/load/run.js'

function closedJob(origin: string, over: Partial<LoadJob> = {}): LoadJob {
  return {
    origin,
    requests: [{path: '/v1/predict', body: '{"instances":[{"x":1}]}'}],
    mode: 'closed',
    concurrency: 1,
    warmupMs: 0,
    durationMs: 400,
    timeoutMs: 2000,
    ...over,
  }
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A TCP server that answers each request (once its body arrived) with `reply`, counting connections. */
function rawServer(reply: (socket: Socket) => void): {server: Server; connections: () => number} {
  let connections = 0
  const server = createTcpServer((socket) => {
    connections++
    let seen = ''
    socket.on('data', (chunk) => {
      seen += chunk.toString('latin1')
      const head = seen.indexOf('\r\n\r\n')
      if (head < 0) return
      const length = Number(/content-length: (\d+)/i.exec(seen.slice(0, head))?.[1] ?? 0)
      if (seen.length < head + 4 + length) return
      seen = seen.slice(head + 4 + length)
      reply(socket)
    })
    socket.on('error', () => undefined)
  })
  return {server, connections: () => connections}
}

describe('load generator HTTP client', function () {
  this.timeout(20_000)
  const servers: Server[] = []
  afterEach(() => {
    for (const s of servers.splice(0)) s.close()
  })

  it('reads chunked answers and keeps one connection alive for a whole closed-loop run', async () => {
    let connections = 0
    const server = createHttpServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, {'content-type': 'application/json'})
        res.write('{"predictions":')
        res.end('[{"y":1}]}')
      })
    })
    server.on('connection', () => connections++)
    servers.push(server)
    const phase = await runLoadPhase(closedJob(await listen(server)))
    server.closeAllConnections()
    assert.ok(phase.requests > 20, `a 400 ms closed loop on one user sends many requests (${phase.requests})`)
    assert.deepEqual(phase.statuses, {200: phase.requests})
    assert.equal(connections, 1, 'every request went over the same kept-alive connection')
  })

  it('opens a new connection after an answer that closes it, and reads an answer whose end is the close', async () => {
    const closing = rawServer((socket) =>
      socket.end('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}'),
    )
    const unsized = rawServer((socket) =>
      socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n{"error":"busy"}'),
    )
    servers.push(closing.server, unsized.server)
    const closed = await runLoadPhase(closedJob(await listen(closing.server)))
    assert.deepEqual(closed.statuses, {200: closed.requests}, `no request failed: ${closed.samples.join('; ')}`)
    // (The server also counts the connection a last request opened as the run ended.)
    assert.ok(
      closing.connections() >= closed.requests,
      `one connection per request: ${closing.connections()} for ${closed.requests}`,
    )
    const noLength = await runLoadPhase(closedJob(await listen(unsized.server)))
    assert.ok(noLength.requests > 5)
    assert.deepEqual(
      noLength.statuses,
      {503: noLength.requests},
      `answers without a length end at the close: ${noLength.samples.join('; ')}`,
    )
  })

  it('fails an answer that is not HTTP and one cut off half-way, naming why, and carries on', async () => {
    const garbage = rawServer((socket) => socket.write('SSH-2.0-OpenSSH_9.2\r\n\r\n'))
    const cut = rawServer((socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"predictions":'))
    servers.push(garbage.server, cut.server)
    const notHttp = await runLoadPhase(closedJob(await listen(garbage.server)))
    assert.ok(
      notHttp.requests > 5,
      `each failure is followed by the next request on a new connection (${notHttp.requests})`,
    )
    assert.deepEqual(notHttp.statuses, {error: notHttp.requests})
    assert.match(notHttp.samples[0], /^error: Response does not match the HTTP\/1\.1 protocol/)
    const cutOff = await runLoadPhase(closedJob(await listen(cut.server)))
    assert.deepEqual(cutOff.statuses, {reset: cutOff.requests})
    assert.match(cutOff.samples[0], /^reset: /)
  })

  it('fails, without hanging or growing, on answers framed the way that wedged the old parser', async () => {
    const negative = rawServer((socket) =>
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n-6\r\nabcdef\r\n0\r\n\r\n'),
    )
    const endless = rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\n')
      const line = Buffer.from(`x-endless: ${'a'.repeat(1000)}\r\n`)
      const more = () => socket.write(line, (error) => !error && !socket.destroyed && setImmediate(more))
      more()
    })
    servers.push(negative.server, endless.server)
    for (const server of [negative.server, endless.server]) {
      const phase = await runLoadPhase(closedJob(await listen(server), {durationMs: 1000}))
      assert.ok(phase.requests > 1, `each failure is followed by the next request (${phase.requests})`)
      assert.deepEqual(phase.statuses, {error: phase.requests}, phase.samples.join('; '))
    }
  })
})
