// Choosing the engine and the errors a user sees when none works: real PATHs, the real docker CLI without a daemon.
import assert from 'node:assert/strict'
import {rmSync} from 'node:fs'
import {mkdir, symlink} from 'node:fs/promises'
import {join} from 'node:path'

import {isMlopsError} from '../../src/errors.js'
import {detectEngine} from '../../src/image/engine.js'
import {run, which} from '../../src/system/exec.js'
import {MODELS_DIR, mlops, tempDir} from '../support/cli.js'

interface ErrorJson {
  error: {code: string; message: string; hint: string}
}

/** A folder holding links to just these programs, to use as PATH. */
async function pathWith(root: string, name: string, programs: Record<string, string>): Promise<string> {
  const dir = join(root, name)
  await mkdir(dir)
  for (const [program, target] of Object.entries(programs)) await symlink(target, join(dir, program))
  return dir
}

async function withPath<T>(path: string, use: () => Promise<T>): Promise<T> {
  const saved = process.env.PATH
  process.env.PATH = path
  try {
    return await use()
  } finally {
    process.env.PATH = saved
  }
}

/** Why the docker cases cannot run here, if they cannot: they need the docker CLI and no daemon behind it. */
async function dockerWithoutDaemon(): Promise<string | undefined> {
  const docker = await which('docker')
  if (!docker) return undefined
  try {
    await run(docker, ['version', '--format', '{{.Server.Version}}'], {timeoutMs: 15_000})
    return undefined
  } catch {
    return docker
  }
}

describe('image engine detection and errors', function () {
  this.timeout(120_000)
  let tmp: Awaited<ReturnType<typeof tempDir>>
  let project: string
  let docker: string | undefined
  let buildah: string | undefined

  before(async () => {
    tmp = await tempDir('mlops-engine-')
    project = join(tmp.path, 'xgb')
    const init = await mlops([
      'init',
      project,
      '--model',
      join(MODELS_DIR, 'xgboost_regressor.onnx'),
      '--name',
      'xgb',
      '--yes',
      '--json',
    ])
    assert.equal(init.exitCode, 0, init.stderr)
    rmSync(join(project, 'Dockerfile'))
    const packaged = await mlops(['package', '--version', '1.0.0', '--json', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
    docker = await dockerWithoutDaemon()
    buildah = await which('buildah')
  })
  after(async () => tmp?.remove())

  it('with no engine on PATH, fails with ENGINE_NOT_FOUND and says what to install', async () => {
    const path = await pathWith(tmp.path, 'bare', {node: process.execPath})
    const result = await mlops(['build', '--json', '--dir', project], {env: {PATH: path}})
    assert.equal(result.exitCode, 1, result.stdout + result.stderr)
    const {error} = result.json as ErrorJson
    assert.equal(error.code, 'ENGINE_NOT_FOUND')
    assert.match(error.message, /no image build engine \(docker, podman or buildah\) was found on PATH/)
    assert.match(error.hint, /install docker, podman or buildah/i)
    assert.match(error.hint, /on GitHub Actions docker is preinstalled/)
  })

  it('passes over a docker CLI whose daemon does not answer, and says so when nothing else is there', async function () {
    if (!docker) this.skip()
    const path = await pathWith(tmp.path, 'docker-only', {node: process.execPath, docker: docker})
    const result = await mlops(['build', '--json', '--dir', project], {env: {PATH: path}})
    assert.equal(result.exitCode, 1)
    const {error} = result.json as ErrorJson
    assert.equal(error.code, 'ENGINE_NOT_FOUND')
    assert.match(
      error.message,
      /docker: the daemon does not answer \(.*(daemon|docker\.sock).*\), and neither podman nor buildah is on PATH/,
    )
    assert.match(error.hint, /Start Docker/)
  })

  it('picks buildah after a docker without daemon, and reports docker as passed over', async function () {
    if (!docker || !buildah) this.skip()
    const path = await pathWith(tmp.path, 'docker-buildah', {docker: docker, buildah: buildah})
    const detected = await withPath(path, () => detectEngine(undefined))
    assert.equal(detected.engine.name, 'buildah')
    assert.equal(detected.skipped.length, 1)
    assert.match(detected.skipped[0], /^docker: the daemon does not answer/)
  })

  it('an engine asked for but not installed is ENGINE_NOT_FOUND', async () => {
    const path = await pathWith(tmp.path, 'no-podman', {})
    await assert.rejects(
      withPath(path, () => detectEngine('podman')),
      (error: unknown) =>
        isMlopsError(error) && error.code === 'ENGINE_NOT_FOUND' && /podman was not found on PATH/.test(error.message),
    )
  })

  it("--engine docker without a daemon fails the build with docker's own error and a hint to start it", async function () {
    if (!docker) this.skip()
    const result = await mlops(['build', '--engine', 'docker', '--no-locale', '--json', '--dir', project])
    assert.equal(result.exitCode, 1)
    const {error} = result.json as ErrorJson
    assert.equal(error.code, 'IMAGE_BUILD_FAILED')
    assert.match(error.message, /^docker build failed \(exit code 1\):\n/)
    assert.match(error.message, /Cannot connect to the Docker daemon|docker\.sock/)
    assert.match(error.hint, /Start Docker/)
  })

  it('an invalid --tag or --build-arg, or --push of a bare name, is a usage error (exit 2) before any engine runs', async () => {
    const badTag = await mlops(['build', '--tag', 'Registry.example.com/ML/Model:1', '--json', '--dir', project], {
      env: {PATH: await pathWith(tmp.path, 'tag', {node: process.execPath})},
    })
    assert.equal(badTag.exitCode, 2)
    assert.equal((badTag.json as ErrorJson).error.code, 'IMAGE_REFERENCE_INVALID')
    const badArg = await mlops(['build', '--build-arg', 'NO_EQUALS', '--json', '--dir', project])
    assert.equal(badArg.exitCode, 2)
    assert.equal((badArg.json as ErrorJson).error.code, 'BUILD_ARG_INVALID')
    const bareName = await mlops(['build', '--push', '--json', '--dir', project], {
      env: {PATH: await pathWith(tmp.path, 'push', {node: process.execPath})},
    })
    assert.equal(bareName.exitCode, 2)
    const {error} = bareName.json as ErrorJson
    assert.equal(error.code, 'PUSH_NEEDS_REGISTRY')
    assert.match(error.hint, /--tag registry\.example\.com\/ml\/xgb/)
  })
})
