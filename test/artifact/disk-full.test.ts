// A full disk while packaging: a clear error, nothing half-written left, the stored versions intact, and the next run
// works once there is room. A small tmpfs is the full disk (mounting needs root; the test says so when it cannot).
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {cpSync, mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {packageRoot} from '../../src/paths.js'
import {mlops} from '../support/cli.js'

const MOUNT = join(tmpdir(), `mlops-disk-full-${process.pid}`)

function mountSmallDisk(): boolean {
  mkdirSync(MOUNT, {recursive: true})
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', MOUNT], {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

describe('artifact: a full disk while packaging', function () {
  this.timeout(120_000)
  const project = join(MOUNT, 'credit-risk')
  const filler = join(MOUNT, 'filler')
  const store = join(project, '.mlops', 'artifacts')

  before(function () {
    if (!mountSmallDisk()) this.skip() // not root here: nothing to fill safely
    cpSync(join(packageRoot, 'examples', 'credit-risk'), project, {recursive: true})
  })
  after(() => {
    try {
      execFileSync('umount', [MOUNT], {stdio: 'ignore'})
    } catch {
      // Not mounted: the before hook skipped.
    }
    rmSync(MOUNT, {recursive: true, force: true})
  })

  it('fails with DISK_FULL, keeps no partial archive, leaves 1.0.0 intact, and packages once there is room', async () => {
    const first = await mlops(['package', '--json', '--dir', project])
    assert.equal(first.exitCode, 0, first.stderr)

    // Leave 48 KB: less than the ~200 KB archive of the next version.
    const {bavail, bsize} = statfsSync(MOUNT)
    writeFileSync(filler, Buffer.alloc(bavail * bsize - 48 * 1024))
    const full = await mlops(['package', '--bump', 'minor', '--json', '--dir', project])
    assert.equal(full.exitCode, 1, full.stdout)
    const error = (full.json as {error: {code: string; message: string; hint: string}}).error
    assert.equal(error.code, 'DISK_FULL', full.stdout)
    assert.match(error.message, /No space left/)
    assert.match(error.hint, /Free some disk space/)

    assert.deepEqual(
      readdirSync(store).filter((name) => name.startsWith('.incoming-') || /^index\.json\.\d+$/.test(name)),
      [],
      'no temp archive or index file left',
    )
    const listed = await mlops(['artifacts', 'list', '--json', '--dir', project])
    assert.deepEqual(
      (listed.json as {artifacts: {version: string}[]}).artifacts.map((a) => a.version),
      ['1.0.0'],
    )
    const verified = await mlops(['artifacts', 'verify', '1.0.0', '--dir', project])
    assert.equal(verified.exitCode, 0, verified.stderr)

    rmSync(filler)
    const again = await mlops(['package', '--bump', 'minor', '--json', '--dir', project])
    assert.equal(again.exitCode, 0, again.stderr)
    const both = await mlops(['artifacts', 'list', '--json', '--dir', project])
    assert.deepEqual(
      (both.json as {artifacts: {version: string}[]}).artifacts.map((a) => a.version),
      ['1.0.0', '1.1.0'],
    )
  })

  it('mlops predict on a full disk stops with DISK_FULL, unpacking the artifact or writing the output, never a stack trace', async () => {
    const fill = (leave: number) => {
      const {bavail, bsize} = statfsSync(MOUNT)
      writeFileSync(filler, Buffer.alloc(bavail * bsize - leave))
    }
    const output = join(project, 'scores.jsonl')
    const predict = () =>
      mlops([
        'predict',
        '--input',
        join(project, 'data', 'applicants.csv'),
        '--output',
        output,
        '--json',
        '--dir',
        project,
      ])
    const diskFull = (run: Awaited<ReturnType<typeof predict>>) => {
      assert.equal(run.exitCode, 1, run.stdout)
      assert.doesNotMatch(run.stderr, /\n\s+at /)
      const error = (run.json as {error: {code: string; message: string}}).error
      assert.equal(error.code, 'DISK_FULL', run.stdout)
      return error.message
    }

    // 1.1.0 was never opened: its model is unpacked into the cache first, and that does not fit.
    fill(8 * 1024)
    assert.match(diskFull(await predict()), /cache/)
    assert.deepEqual(
      readdirSync(join(store, 'cache')).filter((name) => name.startsWith('.extracting-')),
      [],
      'no half-unpacked folder left',
    )
    rmSync(filler)

    const ok = await predict()
    assert.equal(ok.exitCode, 0, ok.stderr)
    rmSync(output)
    fill(8 * 1024)
    assert.ok(diskFull(await predict()).includes(output))
    rmSync(filler)
  })
})
