// The client of the two hot paths that talk HTTP to a server they do not control the bytes of: the gateway's hop to its
// model servers (and the shadow mirror) and the load generator of `mlops test`. undici's pools, whose parser is llhttp:
// an answer with a malformed framing fails its request, heads are bounded by maxHeaderBytes, bodies by maxAnswerBytes,
// and a server that stops answering by the timeouts. A hand-written client over http-parser-js ran here before; one bad
// answer could hang it, as it hung the server beside it.
import {Client, type Dispatcher, Pool} from 'undici'

/** An answer read whole: header names in lower case and their values, alternating. */
export interface Answer {
  status: number
  headers: string[]
  body: Buffer
}

export interface UpstreamOptions {
  /** Connections at most (a Pool); 1 with `single` is one connection (a Client), as a load generator's user has. */
  connections: number
  /** One connection, not a pool of one: the load generator's closed model gives each user its own. */
  single?: boolean
  /**
   * Requests in flight on one connection, at most (default 1). Above 1 they are pipelined, which only a server that reads
   * a request while answering the one before may be sent: the model server does, and takes what arrives together as one batch.
   */
  pipelining?: number
  /** A connection idle this long is closed rather than reused (servers close idle ones). Default 4 s. */
  idleMs?: number
  /** No answer head, or no body bytes, this long after the request: the request fails with code TIMEOUT. */
  timeoutMs?: number
  /** Largest answer body, bytes (default 64 MiB): past it the request fails. */
  maxAnswerBytes?: number
  /** Largest answer head, bytes (default 16 KiB, as Node's). */
  maxHeaderBytes?: number
  /** PEM CA certificates trusted for an https origin (a private CA), in place of the system's. */
  ca?: string | Buffer
}

export interface UpstreamRequest {
  method: string
  path: string
  /** Names and values, alternating, as a server read them; hop-by-hop ones, host and content-length left out by the caller. */
  headers: string[]
  body?: Buffer
}

/**
 * Called once per request: the status, or the error that ended it, with a `code` (ECONNREFUSED, ECONNRESET for a
 * connection closed before the answer, TIMEOUT); with `collect`, the answer's headers and body too.
 */
export type Done = (status: number, error?: Error & {code?: string}, answer?: Answer) => void

const DEFAULT_MAX_ANSWER = 64 * 1024 * 1024

/** undici's error codes in the words of Node's sockets, so callers' retry and failure kinds read the same. */
function normalized(error: Error & {code?: string}): Error & {code?: string} {
  switch (error.code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      error.code = 'TIMEOUT'
      break
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      error.code = 'ECONNRESET'
      break
  }
  return error
}

/** A pool of keep-alive connections to one origin. */
export class Upstream {
  readonly origin: URL
  private readonly dispatcher: Dispatcher
  private readonly timeoutMs: number | undefined
  private readonly pipelined: boolean
  private closed = false

  constructor(origin: URL, options: UpstreamOptions) {
    this.origin = origin
    const settings = {
      pipelining: options.pipelining ?? 1,
      keepAliveTimeout: options.idleMs ?? 4000,
      keepAliveMaxTimeout: options.idleMs ?? 4000,
      maxResponseSize: options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER,
      maxHeaderSize: options.maxHeaderBytes ?? 16 * 1024,
      headersTimeout: options.timeoutMs ?? 300_000,
      bodyTimeout: options.timeoutMs ?? 300_000,
      ...(options.ca ? {connect: {ca: options.ca, ALPNProtocols: ['http/1.1']}} : {}),
    }
    this.dispatcher = options.single
      ? new Client(origin, settings)
      : new Pool(origin, {...settings, connections: options.connections})
    this.timeoutMs = options.timeoutMs
    this.pipelined = (options.pipelining ?? 1) > 1
  }

  /**
   * Sends one request. `collect`: keep the answer's headers and body (the load generator needs the status only);
   * `onStart`: called when the request leaves a wait for a free connection and goes out.
   */
  send(
    request: UpstreamRequest,
    done: Done,
    {collect = true, onStart}: {collect?: boolean; onStart?: () => void} = {},
  ): void {
    if (this.closed) return done(0, Object.assign(new Error('the connection pool is closed'), {code: 'ECONNRESET'}))
    let status = 0
    let headers: string[] = []
    const chunks: Buffer[] = []
    let finished = false
    const finish: Done = (s, error, answer) => {
      if (finished) return
      finished = true
      done(s, error && normalized(error), answer)
    }
    // undici's pools take the callback handler of its 6.x API (onConnect…onComplete), deprecated but not yet replaced there.
    const handler: Dispatcher.DispatchHandler = {
      onConnect: () => onStart?.(),
      onHeaders: (statusCode, raw) => {
        // An interim answer (100 Continue) is not the answer.
        if (statusCode < 200) return true
        status = statusCode
        if (collect) headers = lowerCased(raw)
        return true
      },
      onData: (chunk) => {
        if (collect) chunks.push(chunk)
        return true
      },
      onComplete: () =>
        finish(
          status,
          undefined,
          collect ? {status, headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)} : undefined,
        ),
      onError: (error) => finish(0, error),
    }
    this.dispatcher.dispatch(
      {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body ?? null,
        // A pipelined prediction may go out behind another: the model server answers them in order.
        ...(this.pipelined ? {idempotent: true, blocking: false} : {}),
        ...(this.timeoutMs === undefined ? {} : {headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs}),
      },
      handler,
    )
  }

  /** The request's answer, or its error. */
  request(request: UpstreamRequest): Promise<Answer> {
    return new Promise((resolve, reject) =>
      this.send(request, (_status, error, answer) =>
        answer ? resolve(answer) : reject(error ?? new Error('the server gave no answer')),
      ),
    )
  }

  /** Fails whatever is waiting or in flight with `error` and closes every connection. */
  close(error?: Error): Promise<void> {
    this.closed = true
    return this.dispatcher.destroy(
      error ?? Object.assign(new Error('the connection pool was closed'), {code: 'ECONNRESET'}),
    )
  }

  /** Lets requests already sent finish, then closes; nothing new is sent. */
  end(): Promise<void> {
    this.closed = true
    return this.dispatcher.close()
  }
}

/** undici's raw head (bytes, as sent) as names in lower case and values, alternating; bytes above 0x7F kept as they are. */
function lowerCased(raw: Buffer[]): string[] {
  const out = new Array<string>(raw.length)
  for (let i = 0; i < raw.length; i += 2) {
    out[i] = raw[i].toString('latin1').toLowerCase()
    out[i + 1] = raw[i + 1].toString('latin1')
  }
  return out
}
