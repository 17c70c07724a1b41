// The one way the tool runs other programs: argument arrays (never a shell), debug-logged, errors that carry the tail of stderr.
import {type ChildProcess, spawn} from 'node:child_process'
import type {Readable} from 'node:stream'
import {StringDecoder} from 'node:string_decoder'

import {execa, type Options as ExecaOptions} from 'execa'

import {MlopsError} from '../errors.js'

export interface ExecOptions {
  cwd?: string
  env?: Record<string, string | undefined>
  input?: string
  timeoutMs?: number
  /** Called with each line of output as it arrives (build logs, for progress). */
  onLine?: (line: string) => void
}

export interface ExecResult {
  stdout: string
  stderr: string
  exitCode: number
}

export class CommandFailedError extends MlopsError {
  constructor(
    readonly command: string,
    readonly args: string[],
    readonly status: number | undefined,
    readonly stderrTail: string,
    hint?: string,
  ) {
    const shown = [command, ...args].join(' ')
    super(
      'COMMAND_FAILED',
      `${shown} failed${status === undefined ? '' : ` with exit code ${status}`}${stderrTail ? `:\n${stderrTail}` : ''}`,
      {hint, details: {command, args, exitCode: status, stderrTail}},
    )
  }
}

export class CommandNotFoundError extends MlopsError {
  constructor(
    readonly command: string,
    hint?: string,
  ) {
    super('COMMAND_NOT_FOUND', `${command} was not found on PATH`, {
      hint: hint ?? `Install ${command}, or put it on PATH.`,
    })
  }
}

const debugEnabled = () => Boolean(process.env.DEBUG)
const debugLog = (command: string, args: string[]) => {
  if (debugEnabled()) process.stderr.write(`[mlops] $ ${[command, ...args].join(' ')}\n`)
}

export function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

export async function run(command: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
  debugLog(command, args)
  const execaOptions: ExecaOptions = {
    cwd: options.cwd,
    env: options.env,
    input: options.input,
    timeout: options.timeoutMs,
    reject: false,
    all: false,
    stripFinalNewline: true,
  }
  const child = execa(command, args, execaOptions)
  if (options.onLine) for (const stream of [child.stdout, child.stderr]) if (stream) eachLine(stream, options.onLine)
  const result = await child
  const stdout = String(result.stdout ?? '')
  const stderr = String(result.stderr ?? '')
  const code = (result as {code?: string}).code
  if (code === 'ENOENT') throw new CommandNotFoundError(command)
  if (result.failed) {
    const exitCode = typeof result.exitCode === 'number' ? result.exitCode : undefined
    const why = result.timedOut ? `timed out after ${options.timeoutMs} ms` : tail(stderr || stdout)
    throw new CommandFailedError(command, args, exitCode, why)
  }
  return {stdout, stderr, exitCode: result.exitCode ?? 0}
}

/** Longest line eachLine passes on whole; the rest of a longer one comes as further lines. */
export const MAX_LINE_CHARS = 16_384

/**
 * Calls `onLine` with each line of a child's output as it arrives, without its newline; memory is bounded by
 * MAX_LINE_CHARS whatever the child writes (a line without an end is cut into pieces of that length).
 */
export function eachLine(stream: Readable, onLine: (line: string) => void): void {
  let buffered = ''
  // Not setEncoding: execa reads the same stream for its result. The decoder keeps a character split across chunks whole.
  const decoder = new StringDecoder('utf8')
  stream.on('data', (chunk: Buffer) => {
    buffered += decoder.write(chunk)
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) cut(line, onLine, true)
    // A line without its end yet: its full pieces go now, so what is kept stays bounded.
    buffered = cut(buffered, onLine, false)
  })
  stream.on('end', () => {
    if (buffered) onLine(buffered)
  })
}

/**
 * Passes on `text` in pieces of MAX_LINE_CHARS but the last, which is passed on too when `whole` (a complete line, even
 * an empty one), or else returned to wait for the rest of its line.
 */
function cut(text: string, onLine: (line: string) => void, whole: boolean): string {
  let at = 0
  for (; text.length - at > MAX_LINE_CHARS; at += MAX_LINE_CHARS) onLine(text.slice(at, at + MAX_LINE_CHARS))
  if (!whole) return text.slice(at)
  onLine(text.slice(at))
  return ''
}

export interface StartOptions {
  cwd?: string
  env?: NodeJS.ProcessEnv
  /** Where the child's stdout and stderr go: pipes for the caller to read (the default), nowhere, or a file descriptor. */
  stdout?: 'pipe' | 'ignore' | number
  stderr?: 'pipe' | 'ignore' | number
  /** Leader of its own process group, so it outlives this process (the gateway); the caller unrefs it. */
  detached?: boolean
  /** A JSON IPC channel to a Node.js child (the load generator). */
  ipc?: boolean
}

/**
 * Starts a long-running child (a model server, the gateway, the load generator) and returns it at once: the caller
 * watches it (its ready line, its exit) and stops it. Node's spawn rather than execa: execa is made for commands that
 * end, and buffers their output, kills them 5 s after a SIGTERM and when this process exits; a model server draining on
 * SIGTERM or a detached gateway must do none of that.
 */
export function start(command: string, args: string[], options: StartOptions = {}): ChildProcess {
  debugLog(command, args)
  return spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    detached: options.detached,
    stdio: ['ignore', options.stdout ?? 'pipe', options.stderr ?? 'pipe', ...(options.ipc ? ['ipc' as const] : [])],
    ...(options.ipc ? {serialization: 'json' as const} : {}),
  })
}

/** Whether a program is on PATH, without running it. */
export async function which(command: string): Promise<string | undefined> {
  const {access, constants} = await import('node:fs/promises')
  const path = await import('node:path')
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue
    const candidate = path.join(dir, command)
    try {
      await access(candidate, constants.X_OK)
      return candidate
    } catch {
      // not in this directory
    }
  }
  return undefined
}
