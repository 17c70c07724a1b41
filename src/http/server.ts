// The HTTP/1.1 front of the gateway's client port and the model server: node:http (llhttp, the parser Node maintains and
// fuzzes) under a small handler contract, a request read whole in, one answer out. node:http brings keep-alive, pipelined
// requests answered in order, chunked bodies, Expect: 100-continue and HEAD; this module adds the body limit, a cap on
// connections, per-connection pipelining depth, and refusals that are quiet (no stack, no echo of what the client sent).
// A hand-written parser ran here before: one negative chunk size sent it into an endless loop, so it went. With `tls`
// the same server runs on node:https (the same options), whose certificate can be swapped while it runs.
import {type IncomingMessage, type Server, type ServerResponse, STATUS_CODES, createServer} from 'node:http'
import {type Server as HttpsServer, createServer as createHttpsServer} from 'node:https'
import type {AddressInfo, Socket} from 'node:net'
import type {SecureContextOptions} from 'node:tls'

/** A request read whole. */
export interface ServerRequest {
  method: string
  /** The request target as sent: path and query. */
  url: string
  /** Header names, in lower case, and their values, alternating. */
  headers: string[]
  body: Buffer
}

/** An answer: the server adds content-length and connection; `date` is the answer's to carry (errorAnswer does). */
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
  /** Largest request head (and chunk extensions, and trailers), bytes: 431 past it. Node's default, 16 KiB. */
  maxHeaderBytes?: number
  /** Time for a request's head to arrive, counted from the connection or the previous answer: 408 past it. */
  headersTimeoutMs?: number
  /** Time for a whole request to arrive: 408 past it. */
  requestTimeoutMs?: number
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs?: number
  /** Connections open at once, at most: past it a new connection is closed at once, until some close. 0: no cap. */
  maxConnections?: number
  /** Requests of one connection waiting for their answers, at most: a client pipelining deeper is disconnected. */
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

/** A status's name as an error code, e.g. PAYLOAD_TOO_LARGE for 413. */
export function statusName(status: number): string {
  return (STATUS_CODES[status] ?? 'Bad Request').toUpperCase().replaceAll(/[^A-Z]+/g, '_')
}

/** At most `max` characters of something a client sent, for an error message: never the whole of a hostile input. */
export function clip(text: string, max = 120): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`
}

/** The default refusal: a JSON error whose code is the status's name. */
function refusal(status: number, message: string): ServerAnswer {
  return errorAnswer(status, statusName(status), message)
}

/** What node:http's parser or timers refused, as a status and a message that quotes nothing the client sent. */
function parseRefusal(error: NodeJS.ErrnoException, maxHeaderBytes: number): {status: number; message: string} {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return {status: 431, message: `the request head is larger than ${maxHeaderBytes} bytes`}
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return {status: 413, message: 'the chunk extensions of the request body are too large'}
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {status: 408, message: 'the request did not arrive in time'}
    default:
      return {status: 400, message: `the request is not valid HTTP/1.1 (${error.code ?? 'unreadable'})`}
  }
}

/** How often requests whose body is being read are checked for framing without data. */
const FRAMING_SWEEP_MS = 250

/** Chunks copied once into one buffer, placed so that the byte at `alignAt` sits on an 8-byte boundary. */
function join(chunks: Buffer[], size: number, alignAt: number): Buffer {
  const pad = (8 - (alignAt % 8)) % 8
  // Not from the pool: a pooled buffer's offset is not 8-aligned, and a body that outlives the request should not pin a slab.
  const body = Buffer.allocUnsafeSlow(pad + size).subarray(pad)
  let offset = 0
  for (const chunk of chunks) offset += chunk.copy(body, offset)
  return body
}

/** The bytes of a refusal written straight to a socket whose parser gave up (no ServerResponse exists for it). */
function serialize(answer: ServerAnswer): Buffer {
  const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body
  let head = `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\n`
  for (let i = 0; i < answer.headers.length; i += 2) head += `${answer.headers[i]}: ${answer.headers[i + 1]}\r\n`
  head += `connection: close\r\ncontent-length: ${body.length}\r\n\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), body])
}

export class HttpServer {
  private readonly server: Server | HttpsServer
  private readonly options: Options
  private closing = false
  /** Open connections and how many answers each is owed. */
  private readonly pending = new Map<Socket, number>()
  /** Requests whose body is being read: the socket's byte count when their head was done, and body bytes since. */
  private readonly reading = new Map<ServerResponse, {bytesRead: number; body: number}>()
  private readonly sweep: NodeJS.Timeout

  constructor(
    options: ServerOptions,
    private readonly handler: RequestHandler,
  ) {
    this.options = {
      maxHeaderBytes: 16 * 1024,
      headersTimeoutMs: 60_000,
      requestTimeoutMs: 300_000,
      keepAliveTimeoutMs: 65_000,
      maxConnections: 0,
      maxPipelined: 64,
      refusal,
      alignBody: () => 0,
      ...options,
    }
    const o = this.options
    const tls = options.tls
    const http = {
      noDelay: true,
      insecureHTTPParser: false,
      requireHostHeader: true,
      maxHeaderSize: o.maxHeaderBytes,
      headersTimeout: Math.min(o.headersTimeoutMs, o.requestTimeoutMs),
      requestTimeout: o.requestTimeoutMs,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      // How often node:http looks for requests past their time: a quarter of the shortest limit, at most once a second.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, o.headersTimeoutMs / 4)),
    }
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res)
    this.server = tls
      ? createHttpsServer(
          {
            ...http,
            ...tls,
            ALPNProtocols: ['http/1.1'],
            // With a CA for clients: mutual TLS, a client without a certificate it signed is refused in the handshake.
            ...(tls.ca ? {requestCert: true, rejectUnauthorized: true} : {}),
          },
          onRequest,
        )
      : createServer(http, onRequest)
    if (o.maxConnections > 0) this.server.maxConnections = o.maxConnections
    // Over TLS a request's socket is the TLS one, known once its handshake is done.
    this.server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
      this.pending.set(socket, 0)
      socket.once('close', () => this.pending.delete(socket))
    })
    // A body is read only once asked for: too large, it is refused before the client sends it.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      if (this.tooLong(req)) return this.onRequest(req, res)
      res.writeContinue()
      this.onRequest(req, res)
    })
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => this.onClientError(error, socket))
    this.sweep = setInterval(() => this.refuseEndlessFraming(), FRAMING_SWEEP_MS).unref()
  }

  /** Swaps the certificate and key (TLS only): new connections use them, open ones keep theirs. */
  setSecureContext(options: SecureContextOptions): void {
    ;(this.server as HttpsServer).setSecureContext(options)
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
    const closed = new Promise<void>((resolve) =>
      this.server.close(() => {
        clearInterval(this.sweep)
        resolve()
      }),
    )
    // node:http's own idea of idle leaves out connections that never sent a request.
    for (const [socket, owed] of this.pending) if (owed === 0) socket.destroy()
    return closed
  }

  /** Drops every connection at once, answers owed or not. */
  destroyAll(): void {
    this.server.closeAllConnections()
  }

  private tooLong(req: IncomingMessage): boolean {
    const length = req.headers['content-length']
    return length !== undefined && Number(length) > this.options.maxBodyBytes
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket
    const owed = (this.pending.get(socket) ?? 0) + 1
    // A client this many answers behind is not reading them: it holds memory for nothing.
    if (owed > this.options.maxPipelined) return void socket.destroy()
    this.pending.set(socket, owed)
    res.once('close', () => {
      if (this.pending.has(socket)) this.pending.set(socket, (this.pending.get(socket) ?? 1) - 1)
    })
    if (this.tooLong(req)) return this.refuse(req, res, 413)
    const chunks: Buffer[] = []
    let size = 0
    let refused = false
    const read = {bytesRead: socket.bytesRead, body: 0}
    this.reading.set(res, read)
    res.once('close', () => this.reading.delete(res))
    req.on('data', (chunk: Buffer) => {
      if (refused) return
      size += chunk.length
      read.body = size
      if (size > this.options.maxBodyBytes) {
        refused = true
        chunks.length = 0
        this.refuse(req, res, 413)
      } else chunks.push(chunk)
    })
    req.once('end', () => {
      this.reading.delete(res)
      if (refused || res.headersSent) return
      const raw = req.rawHeaders
      const headers = new Array<string>(raw.length)
      for (let i = 0; i < raw.length; i += 2) {
        headers[i] = raw[i].toLowerCase()
        headers[i + 1] = raw[i + 1]
      }
      const body =
        chunks.length === 1
          ? chunks[0]
          : chunks.length === 0
            ? Buffer.alloc(0)
            : join(chunks, size, this.options.alignBody(headers))
      let answered = false
      const respond = (answer: ServerAnswer) => {
        if (answered) return
        answered = true
        this.write(req, res, answer)
      }
      try {
        this.handler({method: req.method ?? 'GET', url: req.url ?? '/', headers, body}, respond)
      } catch (error) {
        respond(errorAnswer(500, 'INTERNAL', clip((error as Error).message, 300)))
      }
    })
    // A client that goes away mid-body: nothing to answer.
    req.once('error', () => undefined)
  }

  /**
   * llhttp takes a chunk-size line of endless leading zeros, or endless chunk extensions of small chunks, without a word:
   * what a request's body brings beyond its bytes (its framing) may be at most the head limit and as much again as the
   * body, or the request is refused with 431. Node reads the socket natively; its byte count is the only view of it.
   */
  private refuseEndlessFraming(): void {
    for (const [res, read] of this.reading) {
      const framing = res.req.socket.bytesRead - read.bytesRead - read.body
      if (framing <= this.options.maxHeaderBytes + read.body) continue
      this.reading.delete(res)
      res.shouldKeepAlive = false
      const message = 'the chunked framing of the request body is larger than its data allows'
      this.write(res.req, res, this.options.refusal(431, message, res.req.url))
    }
  }

  /** Refuses the request being read (the body limit): the answer closes the connection, so the rest is never read. */
  private refuse(req: IncomingMessage, res: ServerResponse, status: number): void {
    res.shouldKeepAlive = false
    const message = `the request body is larger than ${this.options.maxBodyBytes} bytes`
    this.write(req, res, this.options.refusal(status, message, req.url))
  }

  private write(req: IncomingMessage, res: ServerResponse, answer: ServerAnswer): void {
    if (res.destroyed || res.headersSent) return
    if (this.closing) res.shouldKeepAlive = false
    const body = typeof answer.body === 'string' ? Buffer.from(answer.body) : answer.body
    const head = req.method === 'HEAD'
    // 1xx, 204 and 304 answers have no body, and no length is sent for them (RFC 9110 §8.6).
    const bodiless = answer.status < 200 || answer.status === 204 || answer.status === 304
    const headers = bodiless
      ? answer.headers
      : [...answer.headers, 'content-length', String(head ? (answer.headLength ?? body.length) : body.length)]
    res.sendDate = false
    try {
      res.writeHead(answer.status, headers)
    } catch {
      // A header node:http will not write (a handler passed on a value it cannot send): the answer is the server's fault.
      const failed = errorAnswer(502, 'BAD_ANSWER', 'the answer had a header that cannot be sent')
      res.writeHead(failed.status, [...failed.headers, 'content-length', String(failed.body.length)])
      return void res.end(failed.body)
    }
    res.end(head || bodiless ? undefined : body)
  }

  /** Bytes the parser refused, or a request too slow: one answer, then the connection closes. Quiet: nothing logged. */
  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy()
    // With an answer still owed (bytes after "connection: close", or junk pipelined behind a good request), a refusal
    // written now would jump the queue: nothing more is read, and the connection closes once that answer is out.
    const owed = (socket as Socket & {_httpMessage?: ServerResponse | null})._httpMessage
    const {status, message} = parseRefusal(error, this.options.maxHeaderBytes)
    socket.pause()
    // The bad bytes are in the body of the request being read (a chunk size, a trailer): it is the one refused.
    if (owed && !owed.req.complete) {
      owed.shouldKeepAlive = false
      return this.write(owed.req, owed, this.options.refusal(status, message, owed.req.url))
    }
    if (owed) {
      if (owed.headersSent) return void socket.destroy()
      owed.shouldKeepAlive = false
      const timer = setTimeout(() => socket.destroy(), this.options.requestTimeoutMs).unref()
      socket.once('close', () => clearTimeout(timer))
      return
    }
    socket.end(serialize(this.options.refusal(status, message, undefined)))
    // A client that never closes its side is dropped once the answer is out.
    socket.once('finish', () => socket.destroy())
  }
}
