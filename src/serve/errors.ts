// Errors that become HTTP answers: a status, a stable code and, for client mistakes, the field at fault.
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'HttpError'
  }
}

export function badRequest(code: string, message: string, field?: string): HttpError {
  return new HttpError(400, code, message, field)
}

/** The queue is full: the client should retry after a short pause. */
export class OverloadedError extends HttpError {
  constructor(queued: number) {
    super(503, 'OVERLOADED', `the server is at capacity (${queued} requests waiting); retry shortly`, undefined, {
      'retry-after': '1',
    })
  }
}

export class TimeoutError extends HttpError {
  constructor(ms: number) {
    super(504, 'TIMEOUT', `inference did not finish within ${ms} ms`)
  }
}

/** onnxruntime refused or failed a run. Messages about the feeds are the client's; anything else is the server's. */
export class InferenceError extends HttpError {
  /** ORT's own message, for the server log even when the client gets a safe one. */
  readonly detail: string

  constructor(message: string, clientFault: boolean) {
    super(
      clientFault ? 400 : 500,
      clientFault ? 'INPUT_REJECTED' : 'INFERENCE_FAILED',
      clientFault ? message : 'inference failed on the server; see the server log',
    )
    this.detail = message
  }
}

/** onnxruntime's messages about bad feeds (shape, rank, type, missing input) are clear and safe to return. */
const CLIENT_FAULTS =
  /invalid dimensions|Invalid rank|Unexpected input data type|is missing in 'feeds'|Invalid Feed Input Name|input.*not found/i

export function fromOrtError(error: unknown): InferenceError {
  const message = error instanceof Error ? error.message : String(error)
  return new InferenceError(message.split('\n')[0].slice(0, 500), CLIENT_FAULTS.test(message))
}
