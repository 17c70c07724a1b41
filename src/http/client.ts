// A lean HTTP/1.1 client for the two hot paths where the client's own work per answer is what gets measured or added:
// the load generator (every latency it reports includes it) and the gateway's hop to its model servers. Keep-alive
// connections on net.Socket write request bytes as they are and parse answers with http-parser-js (autocannon's
// parser). Written by hand rather than on undici because, on one event loop, undici's dispatch added 0.1 ms at p50 and
// 5 % at p99 over a bare socket, which matched wrk (bench/loadgen). One request in flight per connection (no
// pipelining), as wrk and autocannon send by default.
import {Socket, connect as connectTcp} from 'node:net'
import {performance} from 'node:perf_hooks'
import {connect as connectTls} from 'node:tls'

import {HTTPParser} from 'http-parser-js'

/** An answer read whole, for connections that keep answers (`collect`): raw header names and values, alternating. */
export interface RawAnswer {
  headers: string[]
  body: Buffer
}

/**
 * Called once per request: the status, or the error that ended it (a `code` such as ECONNREFUSED when the socket gave
 * one); with `collect`, the answer's headers and body too.
 */
export type Done = (status: number, error?: Error & {code?: string}, answer?: RawAnswer) => void

export interface ConnectionOptions {
  /** Keep each answer's headers and body (the gateway); the load generator only needs the status. */
  collect?: boolean
}

/** The bytes of one POST, built once and written as they are for every request. */
export function requestBytes(origin: URL, path: string, body: Buffer, contentType: string): Buffer {
  return requestFor(origin, 'POST', path, ['content-type', contentType], body)
}

/**
 * The bytes of one request. `headers` are names and values, alternating, as a parser read them from a request (no CR or
 * LF); hop-by-hop headers, host and content-length are the caller's to leave out: this sets host and the body's length.
 */
export function requestFor(origin: URL, method: string, path: string, headers: string[], body: Buffer): Buffer {
  let head = `${method} ${path} HTTP/1.1\r\nhost: ${origin.host}\r\n`
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  if (body.length > 0 || method === 'POST' || method === 'PUT' || method === 'PATCH') head += `content-length: ${body.length}\r\n`
  head += '\r\n'
  return body.length > 0 ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1')
}

/** A closed-connection error named like Node's own, so the generator's failure kinds read the same. */
function closedError(message: string, code: string): Error & {code: string} {
  return Object.assign(new Error(message), {code})
}

export class Connection {
  /** When the request in flight was written (performance.now()), for the generator's timeout sweep; undefined when idle. */
  sentAt: number | undefined
  private socket: Socket | undefined
  private parser: InstanceType<typeof HTTPParser> | undefined
  private done: Done | undefined
  /** When the connection last finished a request (performance.now()), for the pool's idle limit. */
  idleSince = 0
  private status = 0
  private keepAlive = true
  private head = false
  private headers: string[] = []
  private chunks: Buffer[] = []

  constructor(private readonly origin: URL, private readonly options: ConnectionOptions = {}) {}

  get busy(): boolean {
    return this.done !== undefined
  }

  /** `head`: the request is a HEAD, whose answer has headers only. */
  send(bytes: Buffer, sentAt: number, done: Done, head = false): void {
    this.done = done
    this.sentAt = sentAt
    this.status = 0
    this.head = head
    const socket = this.socket ?? this.open()
    socket.write(bytes)
  }

  /** Ends the request in flight with `error` and drops the socket; the next send opens a new one. */
  destroy(error: Error): void {
    const socket = this.socket
    this.drop()
    socket?.destroy()
    this.finish(0, error)
  }

  /** Closes the connection once the run is over (nothing in flight). */
  close(): void {
    const socket = this.socket
    this.drop()
    socket?.destroy()
  }

  private open(): Socket {
    const port = Number(this.origin.port) || (this.origin.protocol === 'https:' ? 443 : 80)
    const host = this.origin.hostname.replace(/^\[|\]$/g, '')
    const socket = this.origin.protocol === 'https:' ? connectTls({host, port, servername: host, ALPNProtocols: ['http/1.1']}) : connectTcp({host, port})
    socket.setNoDelay(true)
    const parser = new HTTPParser(HTTPParser.RESPONSE)
    // A parser outlives its socket's turn only in stray events; those must not touch the next request.
    parser[HTTPParser.kOnHeadersComplete] = (info) => {
      if (this.parser !== parser) return
      this.status = info.statusCode
      this.keepAlive = info.shouldKeepAlive
      if (this.options.collect) {
        this.headers = info.headers
        this.chunks = []
      }
      // 1: the answer to a HEAD has no body, whatever its content-length says.
      return this.head && info.statusCode >= 200 ? 1 : 0
    }
    if (this.options.collect) {
      parser[HTTPParser.kOnBody] = (chunk: Buffer, offset: number, length: number) => {
        if (this.parser === parser) this.chunks.push(chunk.subarray(offset, offset + length))
      }
    }
    parser[HTTPParser.kOnMessageComplete] = () => {
      if (this.parser !== parser) return
      // An interim answer (100 Continue) is not the answer.
      if (this.status >= 100 && this.status < 200) return
      if (!this.keepAlive) {
        this.drop()
        socket.end()
      }
      if (!this.options.collect) return this.finish(this.status)
      const chunks = this.chunks
      this.chunks = []
      this.finish(this.status, undefined, {headers: this.headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)})
    }
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return
      const result = parser.execute(chunk)
      if (result instanceof Error) this.destroy(closedError(`the answer is not HTTP/1.1: ${result.message}`, 'HPE_INVALID'))
    })
    // An answer without a length ends when the server closes the connection.
    socket.on('end', () => {
      if (this.socket === socket) parser.finish()
    })
    socket.on('error', (error: Error) => {
      if (this.socket === socket) this.destroy(error)
    })
    socket.on('close', () => {
      if (this.socket === socket) this.destroy(closedError('the server closed the connection before answering', 'ECONNRESET'))
    })
    this.socket = socket
    this.parser = parser
    return socket
  }

  private drop(): void {
    this.socket = undefined
    this.parser = undefined
  }

  private finish(status: number, error?: Error, answer?: RawAnswer): void {
    const done = this.done
    if (!done) return
    this.done = undefined
    this.sentAt = undefined
    this.idleSince = performance.now()
    done(status, error, answer)
  }
}

export interface PoolOptions extends ConnectionOptions {
  /** A connection idle this long is closed rather than reused: servers close idle ones, and a request written into a close fails. */
  idleMs?: number
  /** A request with no whole answer this long after it was written fails with code TIMEOUT (checked by one sweep, not a timer each). */
  timeoutMs?: number
}

/**
 * Up to `size` connections: a request takes an idle connection, opens a new one while fewer than `size` exist, or waits
 * its turn in order.
 */
export class ConnectionPool {
  readonly connections: Connection[] = []
  private readonly idle: Connection[] = []
  private readonly waiting: {bytes: Buffer; done: Done; onSend: () => number; head: boolean}[] = []
  private readonly sweep: NodeJS.Timeout | undefined
  private ending = false

  constructor(readonly origin: URL, private readonly size: number, private readonly options: PoolOptions = {}) {
    const {timeoutMs} = options
    if (timeoutMs !== undefined) {
      this.sweep = setInterval(() => this.expire(timeoutMs), Math.max(10, Math.min(1000, timeoutMs / 4)))
      this.sweep.unref()
    }
  }

  /** `onSend` is called when the request is written and returns the time to stamp it with. */
  send(bytes: Buffer, onSend: () => number, done: Done, head = false): void {
    if (this.ending) return done(0, Object.assign(new Error('the connection pool is closing'), {code: 'ECONNRESET'}))
    const connection = this.takeIdle() ?? (this.connections.length < this.size ? this.add() : undefined)
    if (connection) this.dispatch(connection, bytes, onSend, done, head)
    else this.waiting.push({bytes, done, onSend, head})
  }

  /** Fails every request still waiting for a connection (the drain deadline passed). */
  failWaiting(error: Error): void {
    for (const w of this.waiting.splice(0)) w.done(0, error)
  }

  /** Fails whatever is waiting or in flight with `error` and closes every connection. */
  close(error: Error = Object.assign(new Error('the connection pool was closed'), {code: 'ECONNRESET'})): void {
    clearInterval(this.sweep)
    this.failWaiting(error)
    for (const c of this.connections.splice(0)) c.destroy(error)
    this.idle.length = 0
  }

  /** Closes idle connections now and the others once their answer is in; nothing new is sent. */
  end(): void {
    this.ending = true
    for (const c of this.idle.splice(0)) c.close()
    if (!this.connections.some((c) => c.busy) && this.waiting.length === 0) clearInterval(this.sweep)
  }

  private takeIdle(): Connection | undefined {
    const connection = this.idle.pop()
    // Reused, it reopens its socket on the next send.
    if (connection && this.options.idleMs !== undefined && performance.now() - connection.idleSince >= this.options.idleMs) connection.close()
    return connection
  }

  private add(): Connection {
    const connection = new Connection(this.origin, this.options)
    this.connections.push(connection)
    return connection
  }

  private dispatch(connection: Connection, bytes: Buffer, onSend: () => number, done: Done, head: boolean): void {
    connection.send(bytes, onSend(), (status, error, answer) => {
      const next = this.waiting.shift()
      if (next) this.dispatch(connection, next.bytes, next.onSend, next.done, next.head)
      else if (this.ending) this.retire(connection)
      else this.idle.push(connection)
      done(status, error, answer)
    }, head)
  }

  private retire(connection: Connection): void {
    connection.close()
    if (!this.connections.some((c) => c.busy)) clearInterval(this.sweep)
  }

  private expire(timeoutMs: number): void {
    const now = performance.now()
    for (const c of this.connections) {
      if (c.sentAt !== undefined && now - c.sentAt > timeoutMs) c.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), {code: 'TIMEOUT'}))
    }
  }
}
