// The load generator's HTTP/1.1 client: keep-alive connections that write prebuilt request bytes and parse answers with
// http-parser-js (autocannon's parser). Written on net.Socket rather than undici because the generator's own work per
// answer is part of every latency it reports: on one event loop, undici's dispatch added 0.1 ms at p50 and 5 % at p99
// over a bare socket, which matched wrk (bench/loadgen). Requests are POSTs with fixed bodies; one in flight per
// connection (no pipelining), as wrk and autocannon send by default.
import {Socket, connect as connectTcp} from 'node:net'
import {connect as connectTls} from 'node:tls'

import {HTTPParser} from 'http-parser-js'

/** Called once per request: the status, or the error that ended it (a `code` such as ECONNREFUSED when the socket gave one). */
export type Done = (status: number, error?: Error & {code?: string}) => void

/** The bytes of one POST, built once and written as they are for every request. */
export function requestBytes(origin: URL, path: string, body: Buffer, contentType: string): Buffer {
  const head = `POST ${path} HTTP/1.1\r\nhost: ${origin.host}\r\ncontent-type: ${contentType}\r\ncontent-length: ${body.length}\r\n\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), body])
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
  private status = 0
  private keepAlive = true

  constructor(private readonly origin: URL) {}

  get busy(): boolean {
    return this.done !== undefined
  }

  send(bytes: Buffer, sentAt: number, done: Done): void {
    this.done = done
    this.sentAt = sentAt
    this.status = 0
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
    }
    parser[HTTPParser.kOnMessageComplete] = () => {
      if (this.parser !== parser) return
      // An interim answer (100 Continue) is not the answer.
      if (this.status >= 100 && this.status < 200) return
      if (!this.keepAlive) {
        this.drop()
        socket.end()
      }
      this.finish(this.status)
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

  private finish(status: number, error?: Error): void {
    const done = this.done
    if (!done) return
    this.done = undefined
    this.sentAt = undefined
    done(status, error)
  }
}

/**
 * Up to `size` connections for the open model: a request takes an idle connection, opens a new one while fewer than
 * `size` exist, or waits its turn (its latency still counts from when the schedule said to send it).
 */
export class ConnectionPool {
  readonly connections: Connection[] = []
  private readonly idle: Connection[] = []
  private readonly waiting: {bytes: Buffer; done: Done; onSend: () => number}[] = []

  constructor(private readonly origin: URL, private readonly size: number) {}

  /** `onSend` is called when the request is written and returns the time to stamp it with. */
  send(bytes: Buffer, onSend: () => number, done: Done): void {
    const connection = this.idle.pop() ?? (this.connections.length < this.size ? this.add() : undefined)
    if (connection) this.dispatch(connection, bytes, onSend, done)
    else this.waiting.push({bytes, done, onSend})
  }

  private add(): Connection {
    const connection = new Connection(this.origin)
    this.connections.push(connection)
    return connection
  }

  private dispatch(connection: Connection, bytes: Buffer, onSend: () => number, done: Done): void {
    connection.send(bytes, onSend(), (status, error) => {
      const next = this.waiting.shift()
      if (next) this.dispatch(connection, next.bytes, next.onSend, next.done)
      else this.idle.push(connection)
      done(status, error)
    })
  }

  /** Fails every request still waiting for a connection (the drain deadline passed). */
  failWaiting(error: Error): void {
    for (const w of this.waiting.splice(0)) w.done(0, error)
  }
}
