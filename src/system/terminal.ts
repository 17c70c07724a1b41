// Whether the tool may draw progress, prompt or colour: never in CI, never without a TTY, no colour under NO_COLOR.

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
