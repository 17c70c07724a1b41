// A lean HTTP/1.1 client for the two hot paths where the client's own work per answer is what gets measured or added:
// the load generator (every latency it reports includes it) and the gateway's hop to its model servers. Keep-alive
// connections on net.Socket write request bytes as they are and parse answers with http-parser-js (autocannon's
// parser). Written by hand rather than on undici because, on one event loop, undici's dispatch added 0.1 ms at p50 and
// 5 % at p99 over a bare socket, which matched wrk (bench/loadgen). One request in flight per connection, as wrk and
// autocannon send by default, unless a pool is asked to pipeline (the shadow mirror: answers come back in order).
import {type Socket, connect as connectTcp} from 'node:net'
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
  /** PEM CA certificates trusted for an https origin (a private CA), in place of the system's. */
  ca?: string | Buffer
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
  if (body.length > 0 || method === 'POST' || method === 'PUT' || method === 'PATCH')
    head += `content-length: ${body.length}\r\n`
  head += '\r\n'
  return body.length > 0 ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1')
}

/** A closed-connection error named like Node's own, so the generator's failure kinds read the same. */
function closedError(message: string, code: string): Error & {code: string} {
  return Object.assign(new Error(message), {code})
}

/** A request written and not yet answered. */
interface Sent {
  done: Done
  /** performance.now() when written. */
  sentAt: number
  /** A HEAD, whose answer has headers only. */
  head: boolean
}

export class Connection {
  private socket: Socket | undefined
  private parser: InstanceType<typeof HTTPParser> | undefined
  /** The oldest request in flight, whose answer comes next; kept apart from the array so one in flight costs no array work. */
  private first: Sent | undefined
  /** Requests pipelined behind the first, in order. */
  private readonly behind: Sent[] = []
  /** When the connection last finished a request (performance.now()), for the pool's idle limit. */
  idleSince = 0
  private status = 0
  private keepAlive = true
  private headers: string[] = []
  private chunks: Buffer[] = []
  /** Sends are held back (the socket corked) until release(), to leave in one write. */
  private holding = false

  constructor(
    private readonly origin: URL,
    private readonly options: ConnectionOptions = {},
  ) {}

  hold(): void {
    this.holding = true
  }

  release(): void {
    if (!this.holding) return
    this.holding = false
    if (this.socket?.writableCorked) this.socket.uncork()
  }

  get busy(): boolean {
    return this.first !== undefined
  }

  get inFlight(): number {
    return this.first === undefined ? 0 : 1 + this.behind.length
  }

  /** When the oldest request in flight was written (performance.now()), for timeout sweeps; undefined when idle. */
  get sentAt(): number | undefined {
    return this.first?.sentAt
  }

  /** `head`: the request is a HEAD, whose answer has headers only. Sent while others are in flight, it is pipelined. */
  send(bytes: Buffer, sentAt: number, done: Done, head = false): void {
    if (this.first === undefined) this.first = {done, sentAt, head}
    else this.behind.push({done, sentAt, head})
    const socket = this.socket ?? this.open()
    if (this.holding && !socket.writableCorked) socket.cork()
    socket.write(bytes)
  }

  /** Ends every request in flight with `error` and drops the socket; the next send opens a new one. */
  destroy(error: Error): void {
    const socket = this.socket
    this.drop()
    socket?.destroy()
    this.failBehind(error)
    this.idleSince = performance.now()
    const first = this.first
    this.first = this.behind.shift()
    first?.done(0, error)
  }

  /**
   * Fails the requests pipelined behind the first while the first still holds the connection, so a pool sees it free at
   * most once, when the first is done. Requests sent meanwhile (by those callbacks) go on a new socket behind the first.
   */
  private failBehind(error: Error): void {
    for (const {done} of this.behind.splice(0)) done(0, error)
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
    const socket =
      this.origin.protocol === 'https:'
        ? connectTls({host, port, servername: host, ALPNProtocols: ['http/1.1'], ca: this.options.ca})
        : connectTcp({host, port})
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
      return this.first?.head && info.statusCode >= 200 ? 1 : 0
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
      const status = this.status
      this.status = 0
      let answer: RawAnswer | undefined
      if (this.options.collect) {
        const chunks = this.chunks
        this.chunks = []
        answer = {headers: this.headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)}
      }
      if (this.keepAlive) return this.finish(status, answer)
      // The server closes after this answer: requests pipelined behind it were not read, and fail as a reset would.
      this.drop()
      socket.end()
      this.failBehind(closedError('the server closed the connection before answering', 'ECONNRESET'))
      this.finish(status, answer)
    }
    socket.on('data', (chunk: Buffer) => {
      if (this.socket !== socket) return
      const result = parser.execute(chunk)
      if (result instanceof Error)
        this.destroy(closedError(`the answer is not HTTP/1.1: ${result.message}`, 'HPE_INVALID'))
    })
    // An answer without a length ends when the server closes the connection.
    socket.on('end', () => {
      if (this.socket === socket) parser.finish()
    })
    socket.on('error', (error: Error) => {
      if (this.socket === socket) this.destroy(error)
    })
    socket.on('close', () => {
      if (this.socket === socket)
        this.destroy(closedError('the server closed the connection before answering', 'ECONNRESET'))
    })
    this.socket = socket
    this.parser = parser
    return socket
  }

  private drop(): void {
    this.socket = undefined
    this.parser = undefined
  }

  private finish(status: number, answer: RawAnswer | undefined): void {
    const first = this.first
    if (!first) return
    this.first = this.behind.shift()
    this.idleSince = performance.now()
    first.done(status, undefined, answer)
  }
}

export interface PoolOptions extends ConnectionOptions {
  /** A connection idle this long is closed rather than reused: servers close idle ones, and a request written into a close fails. */
  idleMs?: number
  /** A request with no whole answer this long after it was written fails with code TIMEOUT (checked by one sweep, not a timer each). */
  timeoutMs?: number
  /**
   * Requests in flight on one connection, at most (default 1). Above 1 they are pipelined, which only a server that reads
   * a request while answering the one before may be sent: the model server does, and takes what arrives together as one batch.
   */
  pipeline?: number
}

/**
 * Up to `size` connections: a request takes an idle connection, opens a new one while fewer than `size` exist, is
 * pipelined on the least busy one with room, or waits its turn in order.
 */
export class ConnectionPool {
  readonly connections: Connection[] = []
  private readonly idle: Connection[] = []
  private readonly waiting: {bytes: Buffer; done: Done; onSend: () => number; head: boolean}[] = []
  private readonly sweep: NodeJS.Timeout | undefined
  private ending = false
  /** Inside together(): new connections hold their sends too. */
  private holding = false

  constructor(
    readonly origin: URL,
    private readonly size: number,
    private readonly options: PoolOptions = {},
  ) {
    const {timeoutMs} = options
    if (timeoutMs !== undefined) {
      this.sweep = setInterval(() => this.expire(timeoutMs), Math.max(10, Math.min(1000, timeoutMs / 4)))
      this.sweep.unref()
    }
  }

  /** `onSend` is called when the request is written and returns the time to stamp it with. */
  send(bytes: Buffer, onSend: () => number, done: Done, head = false): void {
    if (this.ending) return done(0, Object.assign(new Error('the connection pool is closing'), {code: 'ECONNRESET'}))
    const connection = this.takeIdle() ?? (this.connections.length < this.size ? this.add() : this.withRoom())
    if (connection) this.dispatch(connection, bytes, onSend, done, head)
    else this.waiting.push({bytes, done, onSend, head})
  }

  /** Requests sent by `fn` (pipelined, when the pool does) leave in one write per connection rather than one each. */
  together(fn: () => void): void {
    this.holding = true
    for (const c of this.connections) c.hold()
    try {
      fn()
    } finally {
      this.holding = false
      for (const c of this.connections) c.release()
    }
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
    if (
      connection &&
      this.options.idleMs !== undefined &&
      performance.now() - connection.idleSince >= this.options.idleMs
    )
      connection.close()
    return connection
  }

  /** The connection with the fewest requests in flight, if it has room for one more. */
  private withRoom(): Connection | undefined {
    const depth = this.options.pipeline ?? 1
    if (depth <= 1) return undefined
    let least: Connection | undefined
    for (const c of this.connections) if (!least || c.inFlight < least.inFlight) least = c
    return least && least.inFlight < depth ? least : undefined
  }

  private add(): Connection {
    const connection = new Connection(this.origin, this.options)
    if (this.holding) connection.hold()
    this.connections.push(connection)
    return connection
  }

  private dispatch(connection: Connection, bytes: Buffer, onSend: () => number, done: Done, head: boolean): void {
    connection.send(
      bytes,
      onSend(),
      (status, error, answer) => {
        const next = this.waiting.shift()
        if (next) this.dispatch(connection, next.bytes, next.onSend, next.done, next.head)
        // With pipelined requests still on their way back, the connection is not idle yet.
        else if (!connection.busy) this.free(connection)
        done(status, error, answer)
      },
      head,
    )
  }

  /** A connection with nothing in flight: idle for the next request, or closed once the pool is ending. */
  private free(connection: Connection): void {
    if (this.ending) this.retire(connection)
    else this.idle.push(connection)
  }

  private retire(connection: Connection): void {
    connection.close()
    if (!this.connections.some((c) => c.busy)) clearInterval(this.sweep)
  }

  private expire(timeoutMs: number): void {
    const now = performance.now()
    for (const c of this.connections) {
      if (c.sentAt !== undefined && now - c.sentAt > timeoutMs)
        c.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), {code: 'TIMEOUT'}))
    }
  }
}
