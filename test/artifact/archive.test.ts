import assert from 'node:assert/strict'
import {chmod, readdir, readFile, rm, utimes, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

import {canonicalJson, writeArchive} from '../../src/artifact/archive.js'
import {checkScan, scanArchive} from '../../src/artifact/read.js'
import {isMlopsError} from '../../src/errors.js'
import {manifestFor, modelBytes, projectEntries, sha256, tempDir} from './helpers.js'

describe('artifact: deterministic archive', () => {
  const dirs: string[] = []
  const dir = async (label: string) => {
    const d = await tempDir(label)
    dirs.push(d)
    return d
  }
  after(async () => {
    for (const d of dirs) await rm(d, {recursive: true, force: true})
  })

  it('gives the same digest from two folders, at different times, with other file modes and entry order', async () => {
    const a = await dir('a')
    const b = await dir('b')
    const entriesA = await projectEntries(a)
    const entriesB = await projectEntries(b)
    await utimes(join(b, 'model.onnx'), new Date('2031-05-06'), new Date('2031-05-06'))
    await chmod(join(b, 'model.onnx'), 0o600)
    await chmod(join(b, 'golden.jsonl'), 0o755)

    const first = await writeArchive(manifestFor('credit-risk', '1.0.0'), entriesA, {tmpDir: a})
    const second = await writeArchive(manifestFor('credit-risk', '1.0.0'), [...entriesB].reverse(), {tmpDir: b})

    assert.equal(first.digest, second.digest)
    assert.equal(first.digest, `sha256:${sha256(await readFile(first.tmpPath))}`)
    assert.equal(first.size, (await readFile(first.tmpPath)).length)
    assert.ok((await readFile(first.tmpPath)).equals(await readFile(second.tmpPath)))
  })

  it('changes the digest when one byte of the model changes', async () => {
    const a = await dir('c')
    const entries = await projectEntries(a)
    const before = await writeArchive(manifestFor('credit-risk', '1.0.0'), entries, {tmpDir: a})
    await writeFile(join(a, 'model.onnx'), modelBytes(2))
    const after = await writeArchive(manifestFor('credit-risk', '1.0.0'), entries, {tmpDir: a})
    assert.notEqual(before.digest, after.digest)
  })

  it('is a plain tar that GNU tar lists: manifest first, sorted, root-owned, fixed mtime and modes', async () => {
    const a = await dir('d')
    const written = await writeArchive(manifestFor('credit-risk', '1.0.0'), await projectEntries(a), {tmpDir: a})
    const {stdout} = await execa('tar', ['--numeric-owner', '-tvf', written.tmpPath], {env: {TZ: 'UTC', LC_ALL: 'C'}})
    const lines = stdout.split('\n').map((l) => l.split(/\s+/))
    assert.deepEqual(
      lines.map((l) => l.at(-1)),
      [
        'manifest.json',
        'golden/',
        'golden/golden.jsonl',
        'model/',
        'model/model.onnx',
        'pipeline/',
        'pipeline/pipeline.json',
      ],
    )
    for (const l of lines) {
      assert.equal(l[0], l.at(-1)!.endsWith('/') ? 'drwxr-xr-x' : '-rw-r--r--')
      assert.equal(l[1], '0/0')
      assert.equal(l[3], '2000-01-01')
    }
  })

  it('fills the manifest with every file and the model digest, serialized with sorted keys', async () => {
    const a = await dir('e')
    const written = await writeArchive(manifestFor('credit-risk', '1.0.0'), await projectEntries(a), {tmpDir: a})
    const {stdout} = await execa('tar', ['-xOf', written.tmpPath, 'manifest.json'])
    assert.equal(stdout + '\n', canonicalJson(written.manifest))
    const manifest = JSON.parse(stdout)
    assert.deepEqual(Object.keys(manifest), [...Object.keys(manifest)].sort())
    assert.equal(manifest.model.sha256, sha256(modelBytes(1)))
    assert.equal(manifest.model.size, modelBytes(1).length)
    assert.deepEqual(
      manifest.files.map((f: {path: string}) => f.path),
      ['golden/golden.jsonl', 'model/model.onnx', 'pipeline/pipeline.json'],
    )
    assert.deepEqual(checkScan(await scanArchive(written.tmpPath)), [])
  })

  it('reads a large archive, extracting it, without piling up listeners (no MaxListenersExceededWarning)', async () => {
    const a = await dir('large')
    const big = join(a, 'weights.bin')
    await writeFile(big, modelBytes(3, 64 * 1024 * 1024))
    const entries = [...(await projectEntries(a)), {path: 'model/weights.bin', source: big}]
    const written = await writeArchive(manifestFor('credit-risk', '1.0.0'), entries, {tmpDir: a})
    const warnings: Error[] = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on('warning', onWarning)
    try {
      assert.deepEqual(checkScan(await scanArchive(written.tmpPath, {extractTo: join(a, 'out')})), [])
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('warning', onWarning)
    }
    assert.deepEqual(
      warnings.map((w) => `${w.name}: ${w.message}`),
      [],
    )
  })

  it('stores long and non-ASCII paths through pax headers that tar reads back', async () => {
    const a = await dir('f')
    const long = `pipeline/${'deep/'.repeat(40)}données-é.json`
    const entries = [...(await projectEntries(a)), {path: long, source: Buffer.from('{}')}]
    const written = await writeArchive(manifestFor('credit-risk', '1.0.0'), entries, {tmpDir: a})
    const {stdout} = await execa('tar', ['-xOf', written.tmpPath, long])
    assert.equal(stdout, '{}')
    assert.deepEqual(checkScan(await scanArchive(written.tmpPath)), [])
  })

  const badEntries: [string, string, RegExp][] = [
    ['a parent segment', '../evil.onnx', /escapes its folder/],
    ['an absolute path', '/etc/evil', /absolute path/],
    ['a backslash', 'model\\m.onnx', /backslash/],
    ['a "." segment', 'model/./m.onnx', /not normalized/],
    ['the manifest name', 'manifest.json', /reserved for the manifest/],
  ]
  for (const [what, path, message] of badEntries) {
    it(`refuses an entry with ${what} and leaves no temp file`, async () => {
      const a = await dir('g')
      const entries = [...(await projectEntries(a)), {path, source: Buffer.from('x')}]
      await assert.rejects(
        writeArchive(manifestFor('credit-risk', '1.0.0'), entries, {tmpDir: a}),
        (error) => isMlopsError(error) && error.code === 'ARTIFACT_ENTRY_INVALID' && message.test(error.message),
      )
      assert.deepEqual(
        (await readdir(a)).filter((n) => n.endsWith('.tar')),
        [],
      )
    })
  }

  it('refuses a model path that is not one of the entries, and a missing source file', async () => {
    const a = await dir('h')
    const entries = await projectEntries(a)
    const manifest = manifestFor('credit-risk', '1.0.0')
    manifest.model.path = 'model/other.onnx'
    await assert.rejects(
      writeArchive(manifest, entries, {tmpDir: a}),
      /model\.path model\/other\.onnx is not one of the archive entries/,
    )
    await assert.rejects(
      writeArchive(
        manifestFor('credit-risk', '1.0.0'),
        [...entries, {path: 'data/x.csv', source: join(a, 'nope.csv')}],
        {tmpDir: a},
      ),
      (error) =>
        isMlopsError(error) && error.code === 'ARTIFACT_SOURCE_MISSING' && error.message.includes('data/x.csv'),
    )
  })
})
