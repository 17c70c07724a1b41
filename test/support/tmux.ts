// A real terminal for tests: a detached tmux session on a socket of its own, its screen read with capture-pane.
import {fileURLToPath} from 'node:url'

import {execa} from 'execa'

const RUN_SOURCE = fileURLToPath(new URL('./run-source.ts', import.meta.url))

/** Whether tmux is installed; outside CI a test without it skips, saying so (CI installs it in .ci/run). */
export async function haveTmux(): Promise<boolean> {
  const found = await execa('tmux', ['-V'], {reject: false}).catch(() => undefined)
  return found?.exitCode === 0
}

export interface Terminal {
  /** The screen and the lines scrolled off it, as text; with `escapes`, the colour escapes too. */
  screen(escapes?: boolean): Promise<string>
  /** Polls the screen until `pattern` shows (or fails naming what the screen held). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
  /** Whether the command still runs. */
  running(): Promise<boolean>
  close(): Promise<void>
}

/** Runs an mlops command from the sources in a 150x50 terminal, with `env` over a TERM and an environment without CI. */
export async function mlopsInTmux(args: string[], env: Record<string, string> = {}): Promise<Terminal> {
  const socket = `mlops-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
  const {CI: _ci, NO_COLOR: _no, MLOPS_NO_PROGRESS: _np, ...rest} = process.env
  const tmux = (tmuxArgs: string[]) =>
    execa('tmux', ['-L', socket, ...tmuxArgs], {env: {...rest, TERM: 'xterm-256color', ...env}, extendEnv: false})
  // The pane stays after the command ends (remain-on-exit), so its last screen can be read; no user tmux.conf.
  const command = [process.execPath, '--import', 'tsx', RUN_SOURCE, ...args].map(quote).join(' ')
  await tmux([
    '-f',
    '/dev/null',
    'new-session',
    '-d',
    '-x',
    '150',
    '-y',
    '50',
    '-s',
    'test',
    command,
    ';',
    'set-option',
    '-t',
    'test',
    'remain-on-exit',
    'on',
  ])
  // From the start of the history (-S -): when a command ends, tmux 3.3 scrolls its first line off the screen to make room
  // for "Pane is dead", so a short output read from the visible screen alone loses its first line now and then.
  const screen = async (escapes = false) =>
    String((await tmux(['capture-pane', '-p', '-S', '-', '-t', 'test', ...(escapes ? ['-e'] : [])])).stdout)
  return {
    screen,
    async waitFor(pattern, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const text = await screen()
        if (pattern.test(text)) return text
        if (Date.now() > deadline) throw new Error(`the screen never showed ${pattern}; it held:\n${text}`)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    },
    async running() {
      const {stdout} = await tmux(['display-message', '-p', '-t', 'test', '#{pane_dead}'])
      return String(stdout).trim() === '0'
    },
    async close() {
      await tmux(['kill-server']).catch(() => undefined)
    },
  }
}

function quote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`
}
