import assert from 'node:assert/strict'
import {execFile, spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {chmod, mkdir, readdir, readFile, rm, stat, truncate, utimes, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {writeArchive} from '../../src/artifact/archive.js'
import {ArtifactStore, openArtifactFile} from '../../src/artifact/store.js'
import {isMlopsError, type MlopsError} from '../../src/errors.js'
import {manifestFor, modelBytes, projectEntries, sha256, tempDir} from './helpers.js'

const NOW = new Date('2030-01-02T03:04:05.000Z')

function expectCode(code: string, pattern?: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(isMlopsError(error), `expected an MlopsError, got ${String(error)}`)
    assert.equal(error.code, code, error.message)
    if (pattern) assert.match(error.message, pattern)
    return true
  }
}

describe('artifact: store', () => {
  let dir: string
  let store: ArtifactStore

  beforeEach(async () => {
    dir = await tempDir('store')
    store = new ArtifactStore(join(dir, '.mlops', 'artifacts'), {now: () => NOW})
  })
  afterEach(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  /** Packages seed-specific content as name@version, the way `mlops package` does. */
  async function pack(version: string, seed = 1, name = 'credit-risk', useWritten = true) {
    const src = join(dir, `src-${name}-${version}-${seed}`)
    await mkdir(src, {recursive: true})
    const archive = await writeArchive(manifestFor(name, version), await projectEntries(src, seed), {
      tmpDir: store.root,
    })
    const put = await store.put(archive.tmpPath, archive.manifest, useWritten ? archive : undefined)
    return {archive, ...put}
  }

  /** Flips one byte in the middle of the model's data inside the stored tar. */
  async function flipModelByte(blob: string, seed = 1): Promise<void> {
    const bytes = await readFile(blob)
    const at = bytes.indexOf(modelBytes(seed).subarray(0, 64))
    assert.ok(at > 0, 'the model data is in the archive')
    bytes[at + 1000] ^= 0xff
    await writeFile(blob, bytes)
  }

  it('stores the archive under its digest and indexes name and version', async () => {
    const {record, created, archive} = await pack('1.2.0')
    assert.equal(created, true)
    assert.equal(record.digest, archive.digest)
    assert.equal(record.path, join(store.root, 'blobs', 'sha256', `${archive.digest.slice(7)}.tar`))
    assert.equal(`sha256:${sha256(await readFile(record.path))}`, record.digest)
    assert.equal(record.storedAt, NOW.toISOString())
    assert.equal(existsSync(archive.tmpPath), false)
    const index = JSON.parse(await readFile(join(store.root, 'index.json'), 'utf8'))
    assert.equal(index.artifacts['credit-risk']['1.2.0'].digest, archive.digest)
  })

  it('scans and checks the archive itself when the caller passes no digest', async () => {
    const {record, archive} = await pack('1.2.0', 1, 'credit-risk', false)
    assert.equal(record.digest, archive.digest)
  })

  it('treats the same content again as a no-op that returns the stored record', async () => {
    const first = await pack('1.2.0')
    const again = await pack('1.2.0')
    assert.equal(again.created, false)
    assert.deepEqual(again.record, first.record)
    assert.equal(existsSync(again.archive.tmpPath), false)
    assert.equal((await readdir(join(store.root, 'blobs', 'sha256'))).length, 1)
  })

  it('refuses a stored version with other content and names the bump', async () => {
    const first = await pack('1.2.0', 1)
    const src = join(dir, 'other')
    await mkdir(src)
    const archive = await writeArchive(manifestFor('credit-risk', '1.2.0'), await projectEntries(src, 2), {
      tmpDir: store.root,
    })
    await assert.rejects(store.put(archive.tmpPath, archive.manifest, archive), (error) => {
      expectCode('VERSION_EXISTS', /credit-risk@1\.2\.0 is already stored with other content/)(error)
      assert.match((error as MlopsError).hint!, /mlops package --bump patch/)
      return true
    })
    assert.equal(existsSync(archive.tmpPath), false)
    assert.deepEqual(
      (await store.list()).map((r) => r.digest),
      [first.record.digest],
    )
  })

  it('refuses to store a name that cannot be a file name or a version that is not plain semver', async () => {
    const src = join(dir, 'bad')
    await mkdir(src)
    const entries = await projectEntries(src)
    for (const [name, version, field] of [
      ['../escape', '1.0.0', 'name'],
      ['credit-risk', 'v1.0.0', 'version'],
    ]) {
      const archive = await writeArchive(manifestFor(name, version), entries, {tmpDir: store.root})
      await assert.rejects(
        store.put(archive.tmpPath, archive.manifest, archive),
        expectCode('MANIFEST_INVALID', new RegExp(`its ${field} `)),
      )
      assert.equal(existsSync(archive.tmpPath), false)
    }
    assert.deepEqual(await store.list(), [])
  })

  it('lists by semver, not by string, and knows the latest version', async () => {
    for (const [i, v] of ['1.10.0', '1.2.0', '1.9.0', '1.2.0-rc.1'].entries()) await pack(v, i + 1)
    assert.deepEqual(
      (await store.list('credit-risk')).map((r) => r.version),
      ['1.2.0-rc.1', '1.2.0', '1.9.0', '1.10.0'],
    )
    assert.equal(await store.latestVersion('credit-risk'), '1.10.0')
    assert.equal(await store.latestVersion('other'), undefined)
  })

  it('resolves every kind of ref', async () => {
    const old = (await pack('1.2.0', 1)).record
    const latest = (await pack('1.10.0', 2)).record
    const hex = old.digest.slice(7)
    const outside = join(dir, 'exported.tar')
    await store.export('1.2.0', outside)
    const cases: [string | undefined, string][] = [
      [undefined, latest.digest],
      ['latest', latest.digest],
      ['1.2.0', old.digest],
      ['v1.2.0', old.digest],
      ['credit-risk@1.2.0', old.digest],
      ['credit-risk@latest', latest.digest],
      [old.digest, old.digest],
      [`sha256:${hex.slice(0, 12)}`, old.digest],
      [hex.slice(0, 7), old.digest],
      [old.path, old.digest],
      [outside, old.digest],
    ]
    for (const [ref, digest] of cases)
      assert.equal((await store.resolve(ref, {name: 'credit-risk'})).digest, digest, `ref ${ref}`)
    const file = await store.resolve(outside)
    assert.deepEqual([file.name, file.version, file.path], ['credit-risk', '1.2.0', outside])
  })

  it('says which versions exist when a ref matches nothing, and refuses an ambiguous one', async () => {
    await pack('1.2.0', 1)
    await pack('1.2.0', 2, 'fraud')
    await assert.rejects(
      store.resolve('9.9.9', {name: 'credit-risk'}),
      expectCode('ARTIFACT_NOT_FOUND', /9\.9\.9 is not stored; the stored versions are 1\.2\.0/),
    )
    await assert.rejects(store.resolve('1.2.0'), expectCode('ARTIFACT_AMBIGUOUS', /credit-risk@1\.2\.0, fraud@1\.2\.0/))
    await assert.rejects(store.resolve('sha256:0000000'), expectCode('ARTIFACT_NOT_FOUND'))
    await assert.rejects(store.resolve('credit-risk@one'), expectCode('REF_INVALID'))
    await assert.rejects(store.resolve('nothing-like-it'), expectCode('ARTIFACT_NOT_FOUND'))
    await assert.rejects(
      store.resolve(join(dir, 'missing.tar')),
      expectCode('ARTIFACT_NOT_FOUND', /missing\.tar does not exist/),
    )
    assert.equal((await store.resolve('1.2.0', {name: 'fraud'})).name, 'fraud')
  })

  it('opens into a cache folder keyed by digest, and re-extracts a cache that was changed', async () => {
    const {record} = await pack('1.2.0')
    const opened = await store.open('1.2.0')
    assert.equal(opened.dir, join(store.root, 'cache', record.digest.slice(7)))
    assert.equal(sha256(await readFile(opened.modelPath)), opened.manifest.model.sha256)
    assert.equal(opened.manifest.version, '1.2.0')

    await chmod(opened.modelPath, 0o644)
    await writeFile(opened.modelPath, 'not the model')
    await writeFile(join(opened.dir, 'stray.txt'), 'x')
    const reopened = await store.open('1.2.0')
    assert.equal(reopened.dir, opened.dir)
    assert.equal(sha256(await readFile(reopened.modelPath)), opened.manifest.model.sha256)
    assert.equal(existsSync(join(opened.dir, 'stray.txt')), false)
  })

  it('verify and open name the model when one byte of it changes in the stored archive', async () => {
    await pack('1.2.0')
    const {path} = await store.resolve('1.2.0')
    await flipModelByte(path)

    const report = await store.verify('1.2.0')
    assert.equal(report.ok, false)
    assert.deepEqual(
      report.problems.map((p) => [p.kind, p.path]),
      [
        ['archive-digest', undefined],
        ['file-digest', 'model/model.onnx'],
      ],
    )
    await assert.rejects(store.open('1.2.0', {cacheDir: join(dir, 'cache')}), (error) => {
      expectCode(
        'ARTIFACT_TAMPERED',
        /^artifact credit-risk@1\.2\.0 fails verification: .*model\/model\.onnx sha256 differs from the manifest/,
      )(error)
      assert.equal(
        (error as MlopsError).hint,
        'Package it again from the same sources ("mlops package --version 1.2.0"): a byte-identical build replaces the damaged archive; otherwise package it as a new version ("mlops package --version 1.2.1").',
      )
      return true
    })
    assert.equal(existsSync(join(dir, 'cache')), false)
    await assert.rejects(store.export('1.2.0', join(dir, 'out.tar')), expectCode('ARTIFACT_TAMPERED'))
    assert.equal(existsSync(join(dir, 'out.tar')), false)
    // As the hint says: the same build again heals it.
    const again = await pack('1.2.0')
    assert.deepEqual([again.created, again.repaired], [false, true])
    assert.equal((await store.verify('1.2.0')).ok, true)
    assert.equal((await pack('1.2.0')).repaired, undefined, 'an intact archive is left alone')
  })

  it('a blob that went missing fails verification instead of crashing', async () => {
    const {record} = await pack('1.2.0')
    await rm(record.path)
    const report = await store.verify('1.2.0')
    assert.deepEqual([report.ok, report.problems[0].kind], [false, 'unreadable'])
  })

  it('exports byte-identical archives to a folder or a file, which open with no store', async () => {
    const {record} = await pack('1.2.0')
    const folder = join(dir, 'dist')
    await mkdir(folder)
    const toFolder = await store.export('1.2.0', folder)
    assert.equal(toFolder.path, join(folder, 'credit-risk-1.2.0.tar'))
    const toFile = await store.export(record.digest, join(dir, 'nested', 'model.tar'))
    for (const exported of [toFolder, toFile]) {
      assert.equal(exported.digest, record.digest)
      assert.ok((await readFile(exported.path)).equals(await readFile(record.path)))
    }
    assert.deepEqual((await readdir(folder)).sort(), ['credit-risk-1.2.0.tar'])
    const opened = await openArtifactFile(toFile.path, {cacheDir: join(dir, 'image-cache')})
    assert.equal(opened.record.digest, record.digest)
    assert.equal(sha256(await readFile(opened.modelPath)), opened.manifest.model.sha256)
    // An earlier export is replaced; a file of another kind is not.
    assert.equal((await store.export('1.2.0', toFile.path)).digest, record.digest)
    await writeFile(join(dir, 'data.csv'), 'age,income\n41,52000\n')
    await assert.rejects(store.export('1.2.0', join(dir, 'data.csv')), {code: 'OUTPUT_EXISTS'})
    assert.equal(await readFile(join(dir, 'data.csv'), 'utf8'), 'age,income\n41,52000\n')
  })

  it('refuses an index that is not an index, naming the file', async () => {
    await mkdir(store.root, {recursive: true})
    await writeFile(join(store.root, 'index.json'), '{"artifacts": 3}')
    await assert.rejects(store.list(), expectCode('STATE_CORRUPT', /index\.json is not an artifact index/))
  })

  it('keeps every version when several processes package into one store at once', async () => {
    await mkdir(store.root, {recursive: true})
    const putter = fileURLToPath(new URL('fixtures/put-version.ts', import.meta.url))
    const versions = ['1.0.0', '1.1.0', '1.2.0', '1.3.0', '1.4.0', '1.5.0']
    const digests = await Promise.all(
      versions.map(
        (version, i) =>
          new Promise<string>((resolve, reject) => {
            execFile(
              process.execPath,
              ['--import', 'tsx', putter, store.root, join(dir, `src-${version}`), version, String(i + 1)],
              (error, stdout, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve(stdout.trim())),
            )
          }),
      ),
    )
    const listed = await store.list()
    assert.deepEqual(
      listed.map((r) => r.version),
      versions,
    )
    assert.deepEqual(
      listed.map((r) => r.digest),
      digests,
    )
    assert.equal(existsSync(join(store.root, 'index.json.lock')), false, 'the index lock is released')
  })

  it('ignores and cleans what a killed packaging process left behind', async () => {
    await mkdir(store.root, {recursive: true})
    const writer = fileURLToPath(new URL('fixtures/killed-writer.ts', import.meta.url))
    const child = spawnSync(process.execPath, ['--import', 'tsx', writer, store.root, join(dir, 'killed-src')], {
      encoding: 'utf8',
    })
    assert.equal(child.signal, 'SIGKILL', child.stderr)
    const [leftover] = (await readdir(store.root)).filter((n) => n.startsWith('.incoming-'))
    assert.ok(leftover, 'the killed writer left its temp archive')
    // Cut it short as a kill in the middle of the write would, and leave a half-written index temp file too.
    await truncate(join(store.root, leftover), 1000)
    const indexTemp = join(store.root, 'index.json.123456789')
    await writeFile(indexTemp, '{"schemaVersion": 1, "artif')
    await utimes(indexTemp, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000))
    // A temp file of a writer that is still running (this process) must be left alone.
    const live = join(store.root, `.incoming-${process.pid}-live.tar`)
    await writeFile(live, 'in progress')
    // And a half-unpacked cache folder of the dead process.
    const halfOpened = join(store.cacheDir, `.extracting-${child.pid}-dead`)
    await mkdir(join(halfOpened, 'model'), {recursive: true})
    await writeFile(join(halfOpened, 'model', 'model.onnx'), 'partial')

    assert.deepEqual(await store.list(), [])
    const {record} = await pack('1.2.0')
    assert.deepEqual(
      (await store.list()).map((r) => r.digest),
      [record.digest],
    )
    const names = await readdir(store.root)
    assert.equal(names.includes(leftover), false)
    assert.equal(names.includes('index.json.123456789'), false)
    assert.equal(existsSync(live), true)
    assert.deepEqual(await readdir(join(store.root, 'blobs', 'sha256')), [`${record.digest.slice(7)}.tar`])
    assert.equal((await stat(record.path)).size, record.size)
    await store.open('1.2.0')
    assert.deepEqual(await readdir(store.cacheDir), [record.digest.slice(7)])
  })
})
