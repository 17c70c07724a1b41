// A lean HTTP/1.1 server for the gateway's client port and the model server, where the server's own work per request is
// added to every prediction. Keep-alive connections on net.Socket, requests parsed with http-parser-js (the parser of the
// client beside it) and read whole, each answer written as one buffer. Written by hand rather than on node:http because,
// measured in one run against the same model server at concurrency 16, a node:http front added 0.84 ms at p50 where this
// one added 0.65 and a byte-for-byte TCP relay 0.49 (nginx 0.39): node:http's request and response streams were most of
// the gateway's cost, and of the model server's own per-request work. What it keeps of HTTP/1.1: keep-alive and close (1.0
// and 1.1), pipelined requests answered in order, chunked request bodies, Expect: 100-continue, limits on head and body
// size, and timeouts for slow or idle clients.
import {STATUS_CODES} from 'node:http'
import {type AddressInfo, type Server, type Socket, createServer} from 'node:net'
import {performance} from 'node:perf_hooks'
import {type SecureContextOptions, type TLSSocket, createServer as createTlsServer} from 'node:tls'

import {HTTPParser} from 'http-parser-js'

/** A request read whole. */
export interface ServerRequest {
  method: string
  /** The request target as sent: path and query. */
  url: string
  /** Header names, in lower case, and their values, alternating. */
  headers: string[]
  body: Buffer
}

/** An answer: the server adds content-length, connection and, for answers it makes itself, date. */
export interface ServerAnswer {
  status: number
  /** Names and values, alternating; none of content-length, transfer-encoding or connection. */
  headers: string[]
  /** Bytes, or text sent as UTF-8. */
  body: Buffer | string
  /** For a HEAD request: the length a GET's body would have (the body itself is never sent). */
  headLength?: number
}

export type RequestHandler = (request: ServerRequest, respond: (answer: ServerAnswer) => void) => void

export interface ServerOptions {
  /** Serve HTTPS with this certificate and key (and, with `ca`, require client certificates it signed). */
  tls?: SecureContextOptions
  /** Largest request body, bytes: 413 past it. */
  maxBodyBytes: number
  /** Largest request head, bytes: 431 past it. Node's default, 16 KiB. */
  maxHeaderBytes?: number
  /** Time for a request's head to arrive once its first byte has (slow clients holding connections): 408 past it. */
  headersTimeoutMs?: number
  /** Time for a whole request to arrive: 408 past it. */
  requestTimeoutMs?: number
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs?: number
  /**
   * Requests of one connection waiting for their answers, at most; reading pauses past it, and past maxBodyBytes of their
   * bodies held, so one connection pipelining large bodies holds about two bodies' worth of memory, not 64.
   */
  maxPipelined?: number
  /**
   * The answer to a request the server refuses itself (413, 431, 408, 400…), given the status, what is wrong and the
   * request target when it was read. Default: `errorAnswer` with the status's name as the code, e.g. PAYLOAD_TOO_LARGE.
   */
  refusal?: (status: number, message: string, url: string | undefined) => ServerAnswer
  /**
   * For a body put together from several reads: the offset in it that should start on an 8-byte boundary (where binary
   * tensors begin, so typed arrays can view them without a copy). Given the request's headers; 0 by default.
   */
  alignBody?: (headers: string[]) => number
}

type Options = Required<Omit<ServerOptions, 'tls'>>

interface Slot {
  /** Bytes of the request's body, held until it is answered. */
  size: number
  keepAlive: boolean
  /** HTTP/1.0 keep-alive must be said. */
  http10: boolean
  head: boolean
  bytes?: Buffer
}

interface Incoming {
  method: string
  url: string
  headers: string[]
  keepAlive: boolean
  http10: boolean
  chunks: Buffer[]
  size: number
}

/** `{"error": {code, message}}` with the status, for answers made here rather than by a model server. */
export function errorAnswer(
  status: number,
  code: string,
  message: string,
  headers: string[] = [],
): ServerAnswer & {body: Buffer} {
  return jsonAnswer(status, {error: {code, message}}, headers)
}

export function jsonAnswer(status: number, value: unknown, headers: string[] = []): ServerAnswer & {body: Buffer} {
  return {
    status,
    headers: ['content-type', 'application/json', 'date', httpDate(), ...headers],
    body: Buffer.from(JSON.stringify(value)),
  }
}

/** The first value of a header (`name` in lower case), as sent. */
export function headerValue(headers: string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1]
  return undefined
}

/** A request target's path: the query left out. */
export function pathOf(url: string): string {
  const query = url.indexOf('?')
  return query < 0 ? url : url.slice(0, query)
}

let dateSecond = 0
let dateText = ''
/** The Date header's value, made once a second. */
export function httpDate(): string {
  const second = Math.floor(Date.now() / 1000)
  if (second !== dateSecond) {
    dateSecond = second
    dateText = new Date(second * 1000).toUTCString()
  }
  return dateText
}

/** How long a connection this side ended waits for the client to close its side (it reads what was written meanwhile), at most the keep-alive limit. */
const ENDED_GRACE_MS = 5000
const CONTINUE = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1')

class Connection {
  /** Answers owed, in request order. */
  private readonly slots: Slot[] = []
  private readonly parser = new HTTPParser(HTTPParser.REQUEST)
  private incoming: Incoming | undefined
  /** No more requests are read: the last one asked to close, the client ended, or the server is closing. */
  private ending = false
  private paused = false
  /** Bytes of the bodies of requests not answered yet. */
  private held = 0
  /** When the request being read began (its first byte) and when its head was done. */
  private requestStart: number | undefined
  private headDone = false
  private idleSince = performance.now()
  /** When this side ended: a client that never closes its side is dropped a little later. */
  private endedAt: number | undefined

  constructor(
    private readonly socket: Socket,
    private readonly options: Options,
    private readonly handler: RequestHandler,
    onClose: () => void,
  ) {
    this.parser.maxHeaderSize = options.maxHeaderBytes
    this.parser[HTTPParser.kOnHeadersComplete] = (info: HeadInfo) => this.onHead(info)
    this.parser[HTTPParser.kOnBody] = (chunk: Buffer, offset: number, length: number) =>
      this.onBody(chunk.subarray(offset, offset + length))
    this.parser[HTTPParser.kOnMessageComplete] = () => this.onMessage()
    socket.on('data', (data: Buffer) => this.onData(data))
    socket.on('end', () => this.onEnd())
    socket.on('error', () => socket.destroy())
    socket.on('close', () => {
      this.slots.length = 0
      onClose()
    })
  }

  get idle(): boolean {
    return this.slots.length === 0 && this.requestStart === undefined
  }

  /** Ends the connection once the answers it owes are written; the last says so. */
  end(): void {
    this.ending = true
    const last = this.slots.at(-1)
    if (last && !last.bytes) last.keepAlive = false
    if (this.slots.length === 0) this.endSocket()
  }

  destroy(): void {
    this.socket.destroy()
  }

  /** Called by the server's sweep: closes idle keep-alive connections and refuses requests that arrive too slowly. */
  sweep(now: number): void {
    const {keepAliveTimeoutMs, headersTimeoutMs, requestTimeoutMs} = this.options
    if (this.endedAt !== undefined) {
      if (now - this.endedAt > Math.min(ENDED_GRACE_MS, keepAliveTimeoutMs)) this.socket.destroy()
      return
    }
    if (this.idle) {
      if (now - this.idleSince > keepAliveTimeoutMs) this.socket.destroy()
      return
    }
    const start = this.requestStart
    if (start === undefined || this.ending) return
    if (now - start > (this.headDone ? requestTimeoutMs : headersTimeoutMs))
      this.refuse(408, `the request did not arrive within ${this.headDone ? requestTimeoutMs : headersTimeoutMs} ms`)
  }

  private onData(data: Buffer): void {
    if (this.ending) return
    this.requestStart ??= performance.now()
    const result = this.parser.execute(data)
    if (result instanceof Error && !this.ending) {
      if (result.message === 'max header size exceeded')
        this.refuse(431, `the request head is larger than ${this.options.maxHeaderBytes} bytes`)
      else this.refuse(400, `the request is not valid HTTP/1.1: ${result.message}`)
    }
  }

  private onHead(info: HeadInfo): void {
    if (this.ending) return
    this.headDone = true
    const method = HTTPParser.methods[info.method] ?? 'GET'
    const http10 = info.versionMajor === 1 && info.versionMinor === 0
    const incoming: Incoming = {
      method,
      url: info.url,
      headers: info.headers,
      keepAlive: info.shouldKeepAlive,
      http10,
      chunks: [],
      size: 0,
    }
    let length: string | undefined
    let coding: string | undefined
    let expect: string | undefined
    // The parser checks the head's size only across reads; a head that came in one read is measured here.
    let size = info.url.length
    const headers = info.headers
    for (let i = 0; i < headers.length; i += 2) {
      size += headers[i].length + headers[i + 1].length + 4
      // Lower-cased once here, so whoever reads the request compares names as they are.
      const name = headers[i].toLowerCase()
      headers[i] = name
      if (name === 'content-length') length = headers[i + 1]
      else if (name === 'transfer-encoding')
        coding = coding === undefined ? headers[i + 1].toLowerCase() : 'several codings'
      else if (name === 'expect') expect = headers[i + 1].toLowerCase()
    }
    const url = info.url
    if (size > this.options.maxHeaderBytes)
      return this.refuse(431, `the request head is larger than ${this.options.maxHeaderBytes} bytes`, url)
    // A request framed two ways is how requests are smuggled past a proxy: refused, as RFC 9112 §6.3 allows.
    if (coding !== undefined && length !== undefined)
      return this.refuse(400, 'the request has both Content-Length and Transfer-Encoding', url)
    if (coding !== undefined && coding !== 'chunked')
      return this.refuse(501, 'only the chunked transfer coding is supported', url)
    if (length !== undefined && !/^\d+$/.test(length))
      return this.refuse(400, `Content-Length "${length}" is not a number of bytes`, url)
    if (length !== undefined && Number(length) > this.options.maxBodyBytes)
      return this.refuse(413, `the request body is larger than ${this.options.maxBodyBytes} bytes`, url)
    if (info.upgrade)
      return this.refuse(501, `${method === 'CONNECT' ? 'CONNECT' : 'protocol upgrades'} are not supported`, url)
    if (expect !== undefined) {
      if (expect !== '100-continue') return this.refuse(417, `Expect: ${expect} is not supported`, url)
      if (!http10) this.socket.write(CONTINUE)
    }
    this.incoming = incoming
  }

  private onBody(chunk: Buffer): void {
    const incoming = this.incoming
    if (!incoming || this.ending) return
    incoming.size += chunk.length
    if (incoming.size > this.options.maxBodyBytes)
      return this.refuse(413, `the request body is larger than ${this.options.maxBodyBytes} bytes`, incoming.url)
    incoming.chunks.push(chunk)
  }

  private onMessage(): void {
    const incoming = this.incoming
    this.incoming = undefined
    this.requestStart = undefined
    this.headDone = false
    if (!incoming || this.ending) return
    const slot: Slot = {
      size: incoming.size,
      keepAlive: incoming.keepAlive,
      http10: incoming.http10,
      head: incoming.method === 'HEAD',
    }
    this.slots.push(slot)
    this.held += slot.size
    if (!incoming.keepAlive) this.ending = true
    if (!this.paused && !this.room()) {
      this.paused = true
      this.socket.pause()
    }
    const body =
      incoming.chunks.length === 1
        ? incoming.chunks[0]
        : join(incoming.chunks, incoming.size, this.options.alignBody(incoming.headers))
    let answered = false
    const respond = (answer: ServerAnswer) => {
      if (answered) return
      answered = true
      this.answer(slot, answer)
    }
    try {
      this.handler({method: incoming.method, url: incoming.url, headers: incoming.headers, body}, respond)
    } catch (error) {
      respond(errorAnswer(500, 'INTERNAL', (error as Error).message))
    }
  }

  /** Room to read another request: few enough waiting for answers, and not too many bytes of their bodies held. */
  private room(): boolean {
    return this.slots.length < this.options.maxPipelined && this.held < this.options.maxBodyBytes
  }

  /** The answer for a request, written once every answer before it is. */
  private answer(slot: Slot, answer: ServerAnswer): void {
    if (this.socket.destroyed) return
    slot.bytes = serialize(answer, slot)
    this.held -= slot.size
    this.flush()
    if (this.paused && !this.ending && this.room()) {
      this.paused = false
      this.socket.resume()
    }
  }

  private flush(): void {
    const ready: Buffer[] = []
    let close = false
    while (this.slots.length > 0 && this.slots[0].bytes) {
      const slot = this.slots.shift()!
      ready.push(slot.bytes!)
      if (!slot.keepAlive) {
        close = true
        break
      }
    }
    if (ready.length === 0) return
    this.socket.write(ready.length === 1 ? ready[0] : Buffer.concat(ready))
    if (close) {
      this.slots.length = 0
      this.ending = true
    }
    if (this.ending && this.slots.length === 0) {
      this.endSocket()
      return
    }
    if (this.slots.length === 0) this.idleSince = performance.now()
  }

  private endSocket(): void {
    this.endedAt ??= performance.now()
    this.socket.end()
  }

  /** Answers the request being read with `status` (the refusal option's answer), after the answers owed before it, and reads nothing more. */
  private refuse(status: number, message: string, url?: string): void {
    this.incoming = undefined
    this.requestStart = undefined
    this.ending = true
    const slot: Slot = {size: 0, keepAlive: false, http10: false, head: false}
    this.slots.push(slot)
    this.answer(slot, this.options.refusal(status, message, url))
  }

  private onEnd(): void {
    // The client sent all it will; a request cut off midway is dropped, and answers owed are still written.
    this.incoming = undefined
    this.requestStart = undefined
    this.end()
  }
}

/** What http-parser-js hands to kOnHeadersComplete. */
interface HeadInfo {
  versionMajor: number
  versionMinor: number
  headers: string[]
  method: number
  url: string
  upgrade: boolean
  shouldKeepAlive: boolean
}

/** A status's name as an error code, e.g. PAYLOAD_TOO_LARGE for 413. */
export function statusName(status: number): string {
  return (STATUS_CODES[status] ?? 'Bad Request').toUpperCase().replaceAll(/[^A-Z]+/g, '_')
}

/** The default refusal: a JSON error whose code is the status's name. */
function refusal(status: number, message: string): ServerAnswer {
  return errorAnswer(status, statusName(status), message)
}

/** Chunks copied once into one buffer, placed so that the byte at `alignAt` sits on an 8-byte boundary. */
function join(chunks: Buffer[], size: number, alignAt: number): Buffer {
  const pad = (8 - (alignAt % 8)) % 8
  // Not from the pool: a pooled buffer's offset is not 8-aligned, and a body that outlives the request should not pin a slab.
  const body = Buffer.allocUnsafeSlow(pad + size).subarray(pad)
  let offset = 0
  for (const chunk of chunks) offset += chunk.copy(body, offset)
  return body
}

function serialize(answer: ServerAnswer, slot: Slot): Buffer {
  let head = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\n`
  const headers = answer.headers
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`
  if (!slot.keepAlive) head += 'connection: close\r\n'
  else if (slot.http10) head += 'connection: keep-alive\r\n'
  const body = answer.body
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.length
  // 1xx, 204 and 304 answers have no body, and no length is sent for them (RFC 9110 §8.6).
  const bodiless = answer.status < 200 || answer.status === 204 || answer.status === 304
  const sent = slot.head || bodiless ? 0 : length
  if (!bodiless) head += `content-length: ${slot.head ? (answer.headLength ?? length) : length}\r\n`
  head += '\r\n'
  if (sent === 0) return Buffer.from(head, 'latin1')
  const bytes = Buffer.allocUnsafe(head.length + sent)
  bytes.write(head, 0, 'latin1')
  if (typeof body === 'string') bytes.write(body, head.length, 'utf8')
  else body.copy(bytes, head.length)
  return bytes
}

export class HttpServer {
  private readonly server: Server
  private readonly connections = new Set<Connection>()
  private readonly options: Options
  private readonly sweep: NodeJS.Timeout
  private closing = false

  constructor(options: ServerOptions, handler: RequestHandler) {
    this.options = {
      maxHeaderBytes: 16 * 1024,
      headersTimeoutMs: 60_000,
      requestTimeoutMs: 300_000,
      keepAliveTimeoutMs: 65_000,
      maxPipelined: 64,
      refusal,
      alignBody: () => 0,
      ...options,
    }
    const accept = (socket: Socket) => {
      if (this.closing) return socket.destroy()
      const connection: Connection = new Connection(socket, this.options, handler, () =>
        this.connections.delete(connection),
      )
      this.connections.add(connection)
    }
    const tls = options.tls
    this.server = tls
      ? createTlsServer(
          {...tls, allowHalfOpen: true, ...(tls.ca ? {requestCert: true, rejectUnauthorized: true} : {})},
          (socket: TLSSocket) => {
            socket.setNoDelay(true)
            accept(socket)
          },
        )
      : createServer({noDelay: true, allowHalfOpen: true}, accept)
    // One sweep for every connection rather than a timer per request.
    const every = Math.max(
      10,
      Math.min(1000, Math.min(this.options.headersTimeoutMs, this.options.keepAliveTimeoutMs) / 4),
    )
    this.sweep = setInterval(() => {
      const now = performance.now()
      for (const connection of this.connections) connection.sweep(now)
    }, every)
    this.sweep.unref()
  }

  /** Swaps the certificate and key (TLS only): new connections use them, open ones keep theirs. */
  setSecureContext(options: SecureContextOptions): void {
    ;(this.server as ReturnType<typeof createTlsServer>).setSecureContext(options)
  }

  /** Resolves with the address bound (port 0 picks a free port). */
  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(port, host, () => {
        this.server.off('error', reject)
        resolve(this.server.address() as AddressInfo)
      })
    })
  }

  /** Takes no new connection and no new request; idle connections close now, the others once their answers are written. */
  close(): Promise<void> {
    this.closing = true
    // The sweep goes on until the last connection is gone: it drops clients that never close their side.
    const closed = new Promise<void>((resolve) =>
      this.server.close(() => {
        clearInterval(this.sweep)
        resolve()
      }),
    )
    for (const connection of this.connections) connection.end()
    return closed
  }

  /** Drops every connection at once, answers owed or not. */
  destroyAll(): void {
    for (const connection of this.connections) connection.destroy()
  }
}
