// The terminal: whether the tool may draw progress, prompt or colour (never in CI, never without a TTY), and its styles.
import pc from 'picocolors'

/** https://no-color.org: a NO_COLOR that is set and not empty turns colour off. */
export function colorAllowed(): boolean {
  return !process.env.NO_COLOR
}

export function isInteractive(stream: NodeJS.WriteStream | NodeJS.ReadStream = process.stdout): boolean {
  if (process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0') return false
  if (process.env.MLOPS_NO_PROGRESS) return false
  return Boolean(stream.isTTY)
}

/** A one-line progress indicator on stderr that redraws in place; a no-op when not interactive. */
export class Progress {
  private lastDraw = 0
  private readonly enabled: boolean

  constructor(
    private readonly label: string,
    enabled: boolean,
    private readonly total?: number,
  ) {
    this.enabled = enabled
  }

  update(done: number, extra = ''): void {
    if (!this.enabled) return
    const now = Date.now()
    if (now - this.lastDraw < 100) return
    this.lastDraw = now
    const pct = this.total ? ` ${Math.min(100, Math.floor((done / this.total) * 100))}%` : ''
    process.stderr.write(`\r\u001B[2K${this.label}${pct} ${extra}`)
  }

  done(message?: string): void {
    if (!this.enabled) return
    process.stderr.write(`\r\u001B[2K${message ? message + '\n' : ''}`)
  }
}

/** Styles for human output: picocolors' functions, or identity functions when colour is off. */
export type Colors = ReturnType<typeof pc.createColors>

/**
 * Colour for a person at a terminal: stdout a TTY, not CI, and no NO_COLOR (https://no-color.org: set to anything
 * but empty). Commands in --json mode never ask. picocolors' own test turns colour on in CI, which logs keep as escapes.
 */
export function colorEnabled(stream: NodeJS.WriteStream = process.stdout, env = process.env): boolean {
  if (env.NO_COLOR) return false
  return isInteractive(stream)
}

export function colors(enabled: boolean): Colors {
  return pc.createColors(enabled)
}

/** No colour: for JSON, files and tests. */
export const PLAIN: Colors = colors(false)

/** The marks beside a verdict: they read the same without colour. */
export const MARK = {pass: '✓', fail: '✗', wait: '…'} as const
