// The runtime copied into a build context: this installation's published files and production dependencies, pruned.
import assert from 'node:assert/strict'
import {existsSync, lstatSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {mkdir, mkdtemp, rm, symlink, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {isMlopsError} from '../../src/errors.js'
import {copyRuntime, fixTimes, productionPackages, type RuntimeSummary} from '../../src/image/runtime.js'
import {packageRoot} from '../../src/paths.js'

function sizeOf(path: string): number {
  const info = lstatSync(path)
  if (!info.isDirectory()) return info.isFile() ? info.size : 0
  return readdirSync(path).reduce((sum, entry) => sum + sizeOf(join(path, entry)), 0)
}

describe('runtime copied into a build context', function () {
  this.timeout(120_000)
  let dir: string
  let summary: RuntimeSummary
  const ortBin = join(packageRoot, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6')
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>
    devDependencies: Record<string, string>
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mlops-runtime-'))
    summary = await copyRuntime({packageRoot, targetDir: dir, arch: process.arch})
  })
  after(async () => rm(dir, {recursive: true, force: true}))

  it("holds mlops' published files (package.json files, and the README npm always adds) and nothing else of the repository", () => {
    assert.deepEqual(
      readdirSync(join(dir, 'package')).sort(),
      ['README.md', 'bin', 'dist', 'oclif.manifest.json', 'package.json', 'schemas', 'templates']
        .filter((f) => existsSync(join(packageRoot, f)))
        .sort(),
    )
    assert.ok(existsSync(join(dir, 'package', 'dist', 'commands', 'serve.js')))
    assert.ok(existsSync(join(dir, 'package', 'templates', 'image', 'Dockerfile')))
  })

  it('holds every production dependency and no development-only one', () => {
    for (const name of Object.keys(pkg.dependencies))
      assert.ok(existsSync(join(dir, 'node_modules', name, 'package.json')), `${name} is in the image`)
    for (const name of ['mocha', 'typescript', 'tsx', 'oclif', 'autocannon'])
      assert.ok(!existsSync(join(dir, 'node_modules', name)), `${name} (dev only) is not`)
    assert.equal(summary.packages, countPackages(join(dir, 'node_modules')))
  })

  it(`keeps onnxruntime-node's linux/${process.arch} binaries only, and counts what it left out`, () => {
    const kept = join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6')
    assert.deepEqual(readdirSync(kept), ['linux'])
    assert.deepEqual(readdirSync(join(kept, 'linux')), [process.arch])
    assert.ok(existsSync(join(kept, 'linux', process.arch, 'onnxruntime_binding.node')))
    assert.equal(summary.prunedBytes, sizeOf(ortBin) - sizeOf(join(ortBin, 'linux', process.arch)))
    assert.ok(summary.prunedBytes > 0)
  })

  it('fixes every mtime, so layers depend on content only; symbolic links are not followed', async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'mlops-times-'))
    const outside = join(scratch, 'outside.txt')
    await writeFile(outside, 'x')
    await mkdir(join(scratch, 'ctx', 'a'), {recursive: true})
    await writeFile(join(scratch, 'ctx', 'a', 'f'), 'y')
    await symlink(outside, join(scratch, 'ctx', 'link'))
    await fixTimes(join(scratch, 'ctx'))
    for (const path of ['ctx', 'ctx/a', 'ctx/a/f'])
      assert.equal(statSync(join(scratch, path)).mtime.toISOString(), '2000-01-01T00:00:00.000Z', path)
    assert.equal(lstatSync(join(scratch, 'ctx', 'link')).mtime.toISOString(), '2000-01-01T00:00:00.000Z')
    assert.notEqual(statSync(outside).mtime.toISOString(), '2000-01-01T00:00:00.000Z')
    await rm(scratch, {recursive: true, force: true})
  })
})

function countPackages(modules: string): number {
  let count = 0
  for (const entry of readdirSync(modules)) {
    if (entry.startsWith('.')) continue
    const names = entry.startsWith('@') ? readdirSync(join(modules, entry)).map((n) => join(entry, n)) : [entry]
    for (const name of names) {
      count++
      const nested = join(modules, name, 'node_modules')
      if (existsSync(nested)) count += countPackages(nested)
    }
  }
  return count
}

describe('production dependency tree', () => {
  let root: string
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'mlops-deps-'))
  })
  afterEach(async () => rm(root, {recursive: true, force: true}))

  async function pkg(dir: string, json: object): Promise<void> {
    await mkdir(dir, {recursive: true})
    await writeFile(join(dir, 'package.json'), JSON.stringify(json))
  }

  it('resolves as Node does: nested versions stay nested, hoisted ones go to the top, dev dependencies are left out', async () => {
    await pkg(root, {
      name: 'mlops',
      dependencies: {a: '1', b: '1'},
      devDependencies: {mocha: '1'},
      optionalDependencies: {'not-installed': '1'},
    })
    await pkg(join(root, 'node_modules', 'a'), {name: 'a', dependencies: {b: '2', '@s/c': '1'}})
    await pkg(join(root, 'node_modules', 'a', 'node_modules', 'b'), {name: 'b', version: '2'})
    await pkg(join(root, 'node_modules', 'b'), {name: 'b', version: '1'})
    await pkg(join(root, 'node_modules', '@s', 'c'), {name: '@s/c', peerDependencies: {a: '1', absent: '1'}})
    await pkg(join(root, 'node_modules', 'mocha'), {name: 'mocha'})
    const found = await productionPackages(root)
    assert.deepEqual([...found.keys()], [join('@s', 'c'), 'a', join('a', 'node_modules', 'b'), 'b'])
  })

  it('flattens dependencies hoisted above mlops when it is installed as a dependency of a project', async () => {
    const mlops = join(root, 'node_modules', 'mlops')
    await pkg(mlops, {name: 'mlops', dependencies: {a: '1', b: '2'}})
    await pkg(join(root, 'node_modules', 'a'), {name: 'a'})
    await pkg(join(mlops, 'node_modules', 'b'), {name: 'b', version: '2'})
    await pkg(join(root, 'node_modules', 'b'), {name: 'b', version: '1'})
    const found = await productionPackages(mlops)
    assert.deepEqual(Object.fromEntries(found), {
      a: join(root, 'node_modules', 'a'),
      b: join(mlops, 'node_modules', 'b'),
    })
  })

  it('refuses two versions that would land on the same path', async () => {
    const mlops = join(root, 'node_modules', 'mlops')
    await pkg(mlops, {name: 'mlops', dependencies: {a: '1', x: '2'}})
    await pkg(join(mlops, 'node_modules', 'x'), {name: 'x', version: '2'})
    await pkg(join(root, 'node_modules', 'a'), {name: 'a', dependencies: {x: '1'}})
    await pkg(join(root, 'node_modules', 'x'), {name: 'x', version: '1'})
    await assert.rejects(
      productionPackages(mlops),
      (error: unknown) =>
        isMlopsError(error) && error.code === 'RUNTIME_CONFLICT' && /node_modules\/x/.test(error.message),
    )
  })

  it('refuses a missing required dependency, naming who needs it', async () => {
    await pkg(root, {name: 'mlops', dependencies: {a: '1'}})
    await pkg(join(root, 'node_modules', 'a'), {name: 'a', dependencies: {gone: '1'}})
    await assert.rejects(
      productionPackages(root),
      (error: unknown) =>
        isMlopsError(error) &&
        error.code === 'RUNTIME_INCOMPLETE' &&
        /a depends on gone/.test(error.message) &&
        /npm ci/.test(error.hint ?? ''),
    )
  })
})
