import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {mkdir, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'

import {canonicalJson, writeArchive} from '../../src/artifact/archive.js'
import {ArtifactStore, openArtifactFile} from '../../src/artifact/store.js'
import {isMlopsError} from '../../src/errors.js'
import {type CraftedEntry, craftTar, manifestFor, projectEntries, tempDir} from './helpers.js'

describe('artifact: hostile and damaged archives', () => {
  let dir: string
  let cache: string
  let parts: CraftedEntry[]

  before(async () => {
    dir = await tempDir('hostile')
    const src = join(dir, 'src')
    await mkdir(src)
    const entries = await projectEntries(src)
    const written = await writeArchive(manifestFor('credit-risk', '1.2.0'), entries, {tmpDir: src})
    parts = [{path: 'manifest.json', body: canonicalJson(written.manifest)}]
    for (const e of entries)
      parts.push({path: e.path, body: Buffer.isBuffer(e.source) ? e.source : await readFile(e.source)})
  })
  after(async () => {
    await rm(dir, {recursive: true, force: true})
  })
  beforeEach(() => {
    cache = join(dir, `cache-${Math.random().toString(36).slice(2)}`)
  })

  async function tarFile(name: string, entries: CraftedEntry[]): Promise<string> {
    const path = join(dir, name)
    await writeFile(path, craftTar(entries))
    return path
  }

  /** open refuses the archive with ARTIFACT_TAMPERED naming `what`, and writes nothing into the cache. */
  async function refused(path: string, what: RegExp): Promise<void> {
    await assert.rejects(openArtifactFile(path, {cacheDir: cache}), (error) => {
      assert.ok(isMlopsError(error), String(error))
      assert.equal(error.code, 'ARTIFACT_TAMPERED')
      assert.match(error.message, what)
      assert.match(error.message, /fails verification/)
      return true
    })
    assert.deepEqual(existsSync(cache) ? await readdir(cache, {recursive: true}) : [], [])
  }

  it('accepts the untouched parts, so each refusal below is about what was changed', async () => {
    const opened = await openArtifactFile(await tarFile('good.tar', parts), {cacheDir: cache})
    assert.equal(opened.manifest.name, 'credit-risk')
    assert.ok(existsSync(opened.modelPath))
  })

  it('refuses an entry that climbs out with ../ and writes nothing outside', async () => {
    const path = await tarFile('dotdot.tar', [
      ...parts,
      {path: '../evil', body: 'pwned'},
      {path: 'model/../../evil2', body: 'pwned'},
    ])
    await refused(path, /"\.\.\/evil" escapes its folder/)
    assert.equal(existsSync(join(dir, 'evil')), false)
    assert.equal(existsSync(join(dir, 'evil2')), false)
    const report = await new ArtifactStore(join(dir, 'store')).verify(path)
    assert.deepEqual(
      report.problems.map((p) => p.kind),
      ['unsafe-path', 'unsafe-path'],
    )
  })

  it('refuses an absolute path and writes nothing there', async () => {
    const target = join(dir, 'absolute-evil')
    await refused(await tarFile('absolute.tar', [...parts, {path: target, body: 'pwned'}]), /is an absolute path/)
    assert.equal(existsSync(target), false)
  })

  it('refuses a symlink, even one a later entry would write through', async () => {
    const outside = join(dir, 'outside')
    await mkdir(outside)
    const entries = [parts[0], {path: 'model', type: 'SymbolicLink' as const, linkpath: outside}, ...parts.slice(1)]
    await refused(await tarFile('symlink.tar', entries), /entry model is a SymbolicLink to .*outside/)
    assert.deepEqual(await readdir(outside), [])
  })

  it('refuses hard links and device files', async () => {
    await refused(
      await tarFile('hardlink.tar', [...parts, {path: 'passwd', type: 'Link', linkpath: '/etc/passwd'}]),
      /entry passwd is a Link to \/etc\/passwd/,
    )
    await refused(
      await tarFile('device.tar', [...parts, {path: 'null', type: 'CharacterDevice'}]),
      /entry null is a CharacterDevice/,
    )
  })

  it('names a file the manifest lists but the archive lacks', async () => {
    await refused(
      await tarFile(
        'missing.tar',
        parts.filter((p) => p.path !== 'golden/golden.jsonl'),
      ),
      /golden\/golden\.jsonl is listed in the manifest but missing from the archive/,
    )
  })

  it('names a file the archive has but the manifest does not list', async () => {
    await refused(
      await tarFile('extra.tar', [...parts, {path: 'model/backdoor.onnx', body: 'x'}]),
      /model\/backdoor\.onnx is in the archive but not in the manifest/,
    )
  })

  it('names a model whose bytes differ from the manifest', async () => {
    const swapped = parts.map((p) => (p.path === 'model/model.onnx' ? {...p, body: Buffer.from('another model')} : p))
    await refused(await tarFile('swapped.tar', swapped), /model\/model\.onnx sha256 differs from the manifest/)
  })

  it('refuses an archive whose manifest is not first, is not JSON, or lacks fields', async () => {
    await refused(
      await tarFile('late.tar', [...parts.slice(1), parts[0]]),
      /the first entry is model\/model\.onnx, not manifest\.json/,
    )
    await refused(
      await tarFile('garbled.tar', [{path: 'manifest.json', body: '{"name": '}, ...parts.slice(1)]),
      /manifest\.json is not valid JSON/,
    )
    await refused(
      await tarFile('fields.tar', [
        {path: 'manifest.json', body: '{"schemaVersion": 1, "name": "x", "version": "one"}'},
        ...parts.slice(1),
      ]),
      /manifest\.json version: must be a semantic version/,
    )
  })

  it('refuses a file that is not a tar at all, and a truncated one', async () => {
    const junk = join(dir, 'junk.tar')
    await writeFile(junk, 'this is not a tar archive')
    await refused(junk, /is not a valid tar|manifest\.json is missing/)
    const good = craftTar(parts)
    const cut = join(dir, 'cut.tar')
    await writeFile(cut, good.subarray(0, 3000))
    await refused(cut, /fails verification/)
    const gzipped = join(dir, 'gzipped.tar')
    await writeFile(gzipped, gzipSync(good))
    await refused(gzipped, /the archive is compressed/)
  })
})
