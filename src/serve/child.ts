// `mlops serve … --json` as a child process, for `mlops test` and the deploy gateway: started through the exec wrapper,
// ready when it prints its JSON ready line; its last stderr lines kept (bounded) for the error a user sees when it dies
// before that, or does not get there in time.
import {once} from 'node:events'
import {setTimeout as delay} from 'node:timers/promises'

import {MlopsError} from '../errors.js'
import {eachLine, start} from '../system/exec.js'

/** The line "mlops serve --json" prints once it serves (src/commands/serve.ts). */
export interface ServeReady {
  url: string
  port: number
  pid: number
  name: string
  version: string
  digest?: string
  /** Processes serving the port. */
  workers: number
}

export interface ProcessExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ServeChildOptions {
  /** The program and every argument ("serve", --json and the port included): the callers run the CLI differently. */
  command: string
  args: string[]
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** How long it may take to print its ready line (loading and warming up a large model takes a while). */
  timeoutMs: number
  /** Names the server in errors, e.g. `the model server for 1.2.0`. */
  name: string
  /** The next step the errors suggest. */
  hint: string
  /** Each line it writes to stderr, and to stdout after the ready line (the gateway's log). */
  onLine?: (line: string) => void
  /** Aborted before the ready line: the child is killed and the start fails (a gateway stopping meanwhile). */
  signal?: AbortSignal
}

export interface ServeChild {
  ready: ServeReady
  /** Resolves when it has exited, however (a stop, a crash). */
  exited: Promise<ProcessExit>
  /** How it ended; undefined while it runs. */
  exit(): ProcessExit | undefined
  /** Its last lines on stderr. */
  stderrTail(): string
  /** SIGTERM (it drains its in-flight requests), SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs: number): Promise<void>
}

/** Lines of stderr kept for errors: enough for a stack trace, bounded whatever the child writes. */
const STDERR_LINES = 30
const STDIO_DRAIN_MS = 1000
/** The most of its stdout kept before the ready line: its JSON error is a few hundred bytes. */
const MAX_PRINTED = 64 * 1024

export async function startServeChild(options: ServeChildOptions): Promise<ServeChild> {
  const child = start(options.command, options.args, {cwd: options.cwd, env: options.env})
  const stderr: string[] = []
  eachLine(child.stderr!, (line) => {
    stderr.push(line)
    if (stderr.length > STDERR_LINES) stderr.shift()
    options.onLine?.(line)
  })
  const stderrTail = () => stderr.join('\n').trim()
  let exit: ProcessExit | undefined
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => resolve((exit = {code, signal})))
    // Never spawned (the program is missing): no exit event follows.
    child.once('error', () => resolve((exit ??= {code: null, signal: null})))
  })
  // Before the ready line: what it printed on stdout, where "--json" puts its error (a JSON document over several lines).
  let printed = ''
  const failure = (code: string, why: string) => {
    const own = jsonError(printed)
    const tail = [own?.message, stderrTail()].filter(Boolean).join('\n')
    return new MlopsError(code, `${options.name} ${why}${tail ? `:\n${tail}` : ''}`, {hint: own?.hint ?? options.hint})
  }

  const ready = await new Promise<ServeReady>((resolve, reject) => {
    let waiting = true
    const fail = (error: MlopsError) => {
      if (!waiting) return
      clearTimeout(timer)
      waiting = false
      child.kill('SIGKILL')
      reject(error)
    }
    const timer = setTimeout(
      () => fail(failure('SERVER_START_TIMEOUT', `was not ready within ${options.timeoutMs / 1000} s`)),
      options.timeoutMs,
    )
    child.once('error', (error) => fail(failure('SERVER_START_FAILED', `could not be started: ${error.message}`)))
    const aborted = () => fail(failure('SERVER_START_FAILED', 'was stopped before it was ready'))
    if (options.signal?.aborted) aborted()
    options.signal?.addEventListener('abort', aborted, {once: true})
    void exited.then(async ({code, signal}) => {
      // Its last words may still be in the pipe when it has exited: read them, unless a grandchild holds it open.
      await Promise.race([once(child, 'close'), delay(STDIO_DRAIN_MS, undefined, {ref: false})])
      fail(failure('SERVER_START_FAILED', `exited (${signal ?? `code ${code}`}) before it was ready`))
    })
    eachLine(child.stdout!, (line) => {
      if (!waiting) return options.onLine?.(line)
      const parsed = readyLine(line)
      if (!parsed) {
        // The start of its JSON error: the whole of it comes before it exits.
        if (printed.length + line.length < MAX_PRINTED && (printed || line === '{'))
          return void (printed += `${line}\n`)
        return fail(failure('SERVER_START_FAILED', `printed "${line.slice(0, 200)}" instead of its JSON ready line`))
      }
      waiting = false
      clearTimeout(timer)
      resolve(parsed)
    })
  })

  return {
    ready,
    exited,
    exit: () => exit,
    stderrTail,
    async stop(graceMs) {
      if (exit) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
      await exited
      clearTimeout(timer)
    },
  }
}

/** The `{"error": {message, hint}}` that "mlops … --json" prints when it fails. */
function jsonError(text: string): {message?: string; hint?: string} | undefined {
  if (!text) return undefined
  try {
    const {error} = JSON.parse(text) as {error?: {message?: unknown; hint?: unknown}}
    const message = typeof error?.message === 'string' ? error.message : undefined
    const hint = typeof error?.hint === 'string' ? error.hint : undefined
    return message === undefined ? undefined : {message, ...(hint ? {hint} : {})}
  } catch {
    return undefined
  }
}

function readyLine(line: string): ServeReady | undefined {
  try {
    const value = JSON.parse(line) as Partial<ServeReady>
    return typeof value.url === 'string' && typeof value.pid === 'number' ? (value as ServeReady) : undefined
  } catch {
    return undefined
  }
}
