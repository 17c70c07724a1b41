// `status --watch` and colour on a real terminal: tmux runs the CLI, the test reads the screen between the steps of a rollout.
import assert from 'node:assert/strict'
import {fileURLToPath} from 'node:url'

import {execa} from 'execa'

import {type Terminal, haveTmux, mlopsInTmux} from '../support/tmux.js'
import {FAST_ANALYSIS, type Project, XGB, burst, project} from './helpers.js'

const RUN_SOURCE = fileURLToPath(new URL('../support/run-source.ts', import.meta.url))
const ESC = '\u001B'
/** A colour or bold escape (SGR 1, 30-37, 90-97): what "no colour" must not contain. */
const STYLED = new RegExp(`${ESC}\\[(?:[0-9;]*;)?(?:1|3[0-7]|9[0-7])(?:;[0-9;]*)?m`)

/** `text` drawn in the foreground colour SGR `code` (31 red, 32 green, 35 magenta). */
function inColour(code: number, text: string): RegExp {
  return new RegExp(`${ESC}\\[[0-9;]*${code}m${text}`)
}

/** One command from the sources, stdout a pipe (not a terminal); `env` over an environment without CI. */
async function run(dir: string, args: string[], env: Record<string, string> = {}) {
  const {CI: _ci, NO_COLOR: _no, ...rest} = process.env
  const result = await execa(process.execPath, ['--import', 'tsx', RUN_SOURCE, ...args, '--dir', dir], {
    env: {...rest, MLOPS_ACTOR: 'tester', ...env},
    extendEnv: false,
    reject: false,
    timeout: 120_000,
  })
  return {exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr)}
}

describe('status --watch and colour on a terminal (tmux)', function () {
  this.timeout(300_000)
  let p: Project | undefined
  const terminals: Terminal[] = []

  before(async function () {
    if (await haveTmux()) return
    if (process.env.CI) assert.fail('tmux is not installed: .ci/run installs it')
    console.log('    skipped: tmux is not installed (apt-get install tmux)')
    this.skip()
  })
  after(async () => {
    for (const t of terminals) await t.close()
    await p?.cleanup()
  })

  it('follows a rollout from before its deploy through shadow and canary to a rollback, redrawn in place', async () => {
    p = await project({steps: [50], analysis: FAST_ANALYSIS})
    const watch = await mlopsInTmux(['status', '--watch', '--interval', '0.2', '--dir', p.dir])
    terminals.push(watch)
    await watch.waitFor(/waiting for a deploy/)

    assert.equal((await run(p.dir, ['deploy', '1.0.0', '--full', '--model', XGB])).exitCode, 0)
    await watch.waitFor(/Healthy {2}1\.0\.0 serves all traffic/)

    // A candidate that fails half its requests: with no traffic yet, shadow only waits.
    const shadow = await run(p.dir, [
      'deploy',
      '1.1.0',
      '--shadow',
      '--model',
      XGB,
      '--env',
      'MLOPS_FAULT_ERROR_RATE=0.5',
    ])
    assert.equal(shadow.exitCode, 0, shadow.stderr)
    // Each wait is for the line that comes last (the gateway follows a new step, and its ledger line, a moment later).
    let screen = await watch.waitFor(/… error_rate +waiting for 60 more requests: candidate 0\/30, stable 0\/30/)
    assert.match(screen, /step 1\/2: shadow/)
    assert.match(screen, /^ +stable +1\.0\.0 +100% /m)
    assert.match(screen, /^ +shadow +1\.1\.0 +mirror 100% /m)
    assert.match(screen, /gates: waiting for data/)
    assert.match(screen, /… latency +waiting for 60 more requests/)
    assert.match(screen, /… agreement +waiting for 30 more answers: 0\/30 compared/)
    // Redrawn in place: the screen holds one frame, not a scroll of them.
    assert.equal(screen.match(/mlops status --watch/g)?.length, 1, screen)

    assert.equal((await run(p.dir, ['promote'])).exitCode, 0)
    screen = await watch.waitFor(/→ [\d:]+ +promote → 1\.1\.0 50%/)
    assert.match(screen, /step 2\/2: canary 50%/)
    assert.match(screen, /^ +stable +1\.0\.0 +50% /m)
    assert.match(screen, /^ +canary +1\.1\.0 +50% /m)

    // Traffic until the error-rate gate fails: Degraded, the gate named with its figures and threshold.
    for (let i = 0; i < 40 && !/Degraded/.test(await watch.screen()); i++) await burst(p.url, 40, 4)
    screen = await watch.waitFor(/Degraded/)
    assert.match(screen, /gates: failed/)
    assert.match(screen, /✗ error_rate +failing +candidate [\d.]+% vs stable [\d.]+%, up [\d.]+% \(at most 1\.0%\)/)
    assert.match(screen, /✓ latency +passing +p99 candidate .* within [\d.]+ ms/)
    const colours = await watch.screen(true)
    assert.match(colours, inColour(31, '✗'), 'the failing mark in red')
    assert.match(colours, inColour(32, '✓'), 'the passing mark in green')

    assert.equal((await run(p.dir, ['rollback', '--reason', 'error rate'])).exitCode, 0)
    screen = await watch.waitFor(/✗ [\d:]+ +rollback → 1\.0\.0 full: error rate/)
    assert.match(screen, /RolledBack {2}1\.1\.0 was rolled back \(error rate\)/)
    assert.match(screen, /at the rollback:\n +gates: failed\n +✗ error_rate +failing/)
    // The rollout ended; the view keeps watching for the next one.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    assert.ok(await watch.running(), 'status --watch still runs after the rollout ended')
  })

  it('colours a terminal, and not under NO_COLOR, in CI, with --json or through a pipe', async () => {
    assert.ok(p, 'runs after the rollout above')
    const show = async (env: Record<string, string>, args: string[] = []) => {
      const t = await mlopsInTmux(['status', '--dir', p!.dir, ...args], env)
      terminals.push(t)
      await t.waitFor(/RolledBack|"phase"/)
      return t.screen(true)
    }
    const coloured = await show({})
    assert.match(coloured, inColour(35, 'RolledBack'), 'the phase in magenta on a terminal')
    assert.doesNotMatch(await show({NO_COLOR: '1'}), STYLED)
    assert.doesNotMatch(await show({CI: 'true'}), STYLED)
    assert.doesNotMatch(await show({}, ['--json']), STYLED)
    const piped = await run(p.dir, ['status'])
    assert.match(piped.stdout, /RolledBack/)
    assert.doesNotMatch(piped.stdout, STYLED)
  })
})

describe('deploy --wait prints the gates when the rollout ends', function () {
  this.timeout(240_000)
  let p: Project | undefined
  after(async () => p?.cleanup())

  it('a rollback names the gate and why in one line, after the steps and the gates that decided', async () => {
    p = await project({steps: [50], analysis: FAST_ANALYSIS})
    assert.equal((await run(p.dir, ['deploy', '1.0.0', '--full', '--model', XGB])).exitCode, 0)
    const args = ['deploy', '1.1.0', '--canary', '50', '--auto', '--wait', '--model', XGB]
    const waiting = run(p.dir, [...args, '--env', 'MLOPS_FAULT_ERROR_RATE=0.5'])
    let done = false
    void waiting.finally(() => (done = true))
    while (!done) await burst(p.url, 40, 4)
    const {exitCode, stdout, stderr} = await waiting
    assert.equal(exitCode, 1, stderr)
    assert.match(stdout, /✗ [\d:]+ +rollback \(auto\) → 1\.0\.0 full/)
    assert.match(stdout, /at the rollback:\n +gates: failed\n +✗ error_rate +failing +candidate [\d.]+% vs stable/)
    const error = stderr.split('\n').find((line) => line.startsWith('Error: '))
    assert.match(
      error ?? stderr,
      /^Error: 1\.1\.0 was rolled back by the error_rate gate: .*error rate: candidate [\d.]+%/,
    )
  })
})

describe('status --watch flags', function () {
  this.timeout(60_000)

  it('refuses an --interval under 0.2 s or not a duration, exit 2 naming the flag', async () => {
    const refusals = {
      '0.1': /--interval: "0\.1" is shorter than 0\.2s\nHint: Give a duration of at least 0\.2s/,
      soon: /--interval: "soon" is not a duration\nHint: Write a number and a unit: 500ms, 10s/,
    }
    for (const [interval, message] of Object.entries(refusals)) {
      const {exitCode, stderr} = await run('.', ['status', '--watch', '--interval', interval])
      assert.equal(exitCode, 2, stderr)
      assert.match(stderr, message)
    }
  })
})
