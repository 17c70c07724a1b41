// mlops build end to end with buildah: a real image on a local Node base, pushed to a real registry, read back with
// skopeo, serving a real prediction from inside the image over HTTP and, with a certificate mounted, HTTPS; a new model
// version reuses the runtime layers.
import assert from 'node:assert/strict'
import {chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'
import {Agent, fetch as undiciFetch} from 'undici'

import {type CliResult, MODELS_DIR, tempDir} from '../support/cli.js'
import {certificates} from '../support/certificates.js'
import {assertMatchesSchema} from '../support/schema.js'
import {
  BASE_IMAGE,
  buildah,
  buildahMissing,
  ensureBaseImage,
  freePort,
  type Registry,
  runInImage,
  skopeo,
  snapshotCli,
  startRegistry,
  waitFor,
} from './helpers.js'

interface BuildJson {
  name: string
  version: string
  artifactDigest: string
  reference: string
  imageId: string
  size: number
  layers: string[]
  labels: Record<string, string>
  dockerfile: string
  generated: boolean
  context: string
  runtime?: {bytes: number; prunedBytes: number}
  pushed: Array<{tag: string; digest: string; reference: string}>
}

interface ErrorJson {
  error: {code: string; message: string; hint: string}
}

const sample = (
  JSON.parse(readFileSync(join(MODELS_DIR, 'xgboost_regressor.json'), 'utf8')) as {
    samples: Array<{inputs: {X: {data: number[]}}; expected_outputs: {variable: {data: number[]}}}>
  }
).samples[0]
const containers = async () => (await buildah(['containers', '--quiet', '--all'])).split('\n').filter(Boolean).sort()
const HEALTHCHECK = ['node', '/opt/mlops/dist/image/healthcheck.js']
const CMD = ['node', '/opt/mlops/bin/run.js', 'serve', '/app/artifact.tar', '--host', '0.0.0.0', '--port', '8080']

function buildFlags(registry: Registry): string[] {
  // No --locale: the test base has no apt-get for the locale stage (the Debian default base has; see the README).
  return [
    '--engine',
    'buildah',
    '--buildah-vfs',
    '--base-image',
    BASE_IMAGE,
    '--no-locale',
    '--tag',
    `${registry.address}/ml/xgb`,
    '--push',
    '--no-tls-verify',
    '--json',
  ]
}

function closeTo(actual: number, expected: number): boolean {
  return Math.abs(actual - expected) <= 1e-5 + 1e-4 * Math.abs(expected)
}

describe('mlops build with buildah (e2e)', function () {
  // A build copies some 300 MB on vfs: minutes on a shared machine.
  this.timeout(600_000)
  let tmp: Awaited<ReturnType<typeof tempDir>>
  let project: string
  let registry: Registry | undefined
  let first: BuildJson
  let commit: string
  let bin: string
  const images: string[] = []

  async function mlops(args: string[], timeoutMs = 580_000): Promise<CliResult> {
    const result = await execa('node', [bin, ...args], {env: {CI: 'true'}, reject: false, timeout: timeoutMs})
    let json: unknown
    try {
      json = JSON.parse(String(result.stdout))
    } catch {
      json = undefined
    }
    return {exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr), json}
  }

  before(async function () {
    const missing = await buildahMissing()
    if (missing) {
      process.stderr.write(`  skipping the image build tests: ${missing}\n`)
      this.skip()
    }
    tmp = await tempDir('mlops-image-')
    bin = await snapshotCli(tmp.path)
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
    // init's Dockerfile stays in the project: unnamed, it is not what is built.
    const git = (args: string[]) =>
      execa('git', ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', ...args], {cwd: project})
    await git(['init', '-q'])
    await git(['add', '-A'])
    await git(['commit', '-qm', 'model'])
    await git(['remote', 'add', 'origin', 'git@github.com:example/xgb.git'])
    commit = (await git(['rev-parse', 'HEAD'])).stdout.trim()
    const packaged = await mlops(['package', '--version', '1.0.0', '--json', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
    ;[registry] = await Promise.all([startRegistry(), ensureBaseImage()])
  })

  after(async () => {
    await registry?.stop()
    for (const image of images) await buildah(['rmi', image]).catch(() => undefined)
    await tmp?.remove()
  })

  it('builds on a local Node base, pushes, and the registry holds the labels, user, port, healthcheck and command', async () => {
    const built = await mlops(['build', '1.0.0', ...buildFlags(registry!), '--dir', project])
    assert.equal(built.exitCode, 0, built.stderr + built.stdout)
    assertMatchesSchema(built.json, 'build')
    first = built.json as BuildJson
    images.push(first.reference)
    assert.equal(first.reference, `${registry!.address}/ml/xgb:1.0.0`)
    assert.equal(first.generated, true)
    assert.equal(first.pushed.length, 1)
    assert.equal(first.pushed[0].reference, `${registry!.address}/ml/xgb@${first.pushed[0].digest}`)

    const stored = (await mlops(['artifacts', 'list', '--json', '--dir', project])).json as {
      artifacts: Array<{version: string; digest: string; storedAt: string}>
    }
    const artifact = stored.artifacts.find((a) => a.version === '1.0.0')!
    const remote = await skopeo(`${registry!.address}/ml/xgb:1.0.0`, 'inspect')
    assert.equal(remote.Digest, first.pushed[0].digest)
    assert.deepEqual(remote.Layers && (remote.Layers as string[]).length, first.layers.length)
    const labels = remote.Labels as Record<string, string>
    assert.equal(labels['org.opencontainers.image.title'], 'xgb')
    assert.equal(labels['org.opencontainers.image.version'], '1.0.0')
    assert.equal(labels['org.opencontainers.image.revision'], commit)
    assert.equal(labels['org.opencontainers.image.source'], 'https://github.com/example/xgb')
    assert.equal(
      labels['org.opencontainers.image.created'],
      artifact.storedAt,
      'created is when the artifact was packaged',
    )
    assert.equal(labels['org.opencontainers.image.base.name'], BASE_IMAGE)
    assert.equal(labels['dev.mlops.artifact.digest'], artifact.digest)

    const config = (await skopeo(`${registry!.address}/ml/xgb:1.0.0`, 'config')).config as {
      User: string
      ExposedPorts: object
      Cmd: string[]
      Env: string[]
      Healthcheck: {Test: string[]}
    }
    assert.equal(config.User, '1000:1000')
    assert.deepEqual(Object.keys(config.ExposedPorts), ['8080/tcp'])
    assert.deepEqual(config.Cmd, CMD)
    assert.ok(config.Env.includes('NODE_ENV=production'))
    assert.equal(config.Healthcheck.Test[0], 'CMD')
    assert.deepEqual(config.Healthcheck.Test, ['CMD', ...HEALTHCHECK, '8080'])
    assert.ok(config.Env.includes('MLOPS_TLS_DIR=/etc/mlops/tls'))

    // Nothing but the Dockerfile, the runtime, an empty home and the artifact goes into the context: no .npmrc, no project files.
    assert.deepEqual(readdirSync(first.context).sort(), ['Dockerfile', 'artifact.tar', 'home', 'runtime'])
    assert.deepEqual(readdirSync(join(first.context, 'home'), {recursive: true}), ['mlops'])
    const runtimeFiles = readdirSync(join(first.context, 'runtime'), {recursive: true}) as string[]
    assert.ok(!runtimeFiles.some((f) => /(^|\/)\.(npmrc|env)$/.test(f)), 'no credentials files in the runtime')
    assert.ok(
      first.runtime!.prunedBytes > 100 * 1024 * 1024,
      `onnxruntime-node binaries of other platforms left out: ${first.runtime!.prunedBytes} bytes`,
    )
  })

  it('serves a correct prediction from inside the image, as uid 1000, and its healthcheck passes only while it serves', async function () {
    if (!first) this.skip()
    const port = await freePort()
    const server = await runInImage(first.reference, [
      ...CMD.slice(0, 4),
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
    ])
    // The image's healthcheck command, pointed at the test's port (8080 may be taken on a shared machine).
    const healthcheck = [...HEALTHCHECK, String(port)]
    try {
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${port}/v2/health/ready`)).ok,
        () => `the server in ${first.reference}, which printed ${JSON.stringify(server.output())},`,
        120_000,
        server.ended,
      )
      assert.match(server.output(), /^ready: /m)

      const v2 = await fetch(`http://127.0.0.1:${port}/v2/models/xgb/infer`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({inputs: [{name: 'X', datatype: 'FP32', shape: [1, 4], data: sample.inputs.X.data}]}),
      })
      assert.equal(v2.status, 200)
      const outputs = ((await v2.json()) as {outputs: Array<{name: string; data: number[]}>}).outputs
      assert.equal(outputs[0].name, 'variable')
      assert.ok(
        closeTo(outputs[0].data[0], sample.expected_outputs.variable.data[0]),
        `${outputs[0].data[0]} vs ${sample.expected_outputs.variable.data[0]}`,
      )

      const [f0, f1, f2, f3] = sample.inputs.X.data
      const v1 = await fetch(`http://127.0.0.1:${port}/v1/predict`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({instances: [{f0, f1, f2, f3}]}),
      })
      assert.equal(v1.status, 200)
      const prediction = ((await v1.json()) as {predictions: Array<{variable: number[]}>}).predictions[0]
      assert.ok(closeTo(prediction.variable[0], sample.expected_outputs.variable.data[0]))

      assert.equal((await server.exec(['node', '-e', 'console.log(process.getuid())'])).trim(), '1000')
      await server.exec(healthcheck)
    } finally {
      await server.stop()
    }
    const stopped = await runInImage(first.reference, healthcheck)
    const result = await stopped.process
    await stopped.stop()
    assert.notEqual(result.exitCode, 0, 'the healthcheck fails when nothing serves')
  })

  it('serves HTTPS with a certificate and key mounted at /etc/mlops/tls, to curl and undici trusting the CA, and its healthcheck passes over HTTPS', async function () {
    if (!first) this.skip()
    const certs = join(tmp.path, 'certs')
    const mounted = join(tmp.path, 'tls')
    mkdirSync(certs)
    mkdirSync(mounted)
    await certificates(certs)
    // What a Kubernetes TLS Secret mounted as a volume holds, readable by the image's uid 1000 (the Secret's default mode).
    copyFileSync(join(certs, 'server.pem'), join(mounted, 'tls.crt'))
    copyFileSync(join(certs, 'server.key'), join(mounted, 'tls.key'))
    chmodSync(join(mounted, 'tls.key'), 0o644)
    const ca = readFileSync(join(certs, 'ca.pem'))
    const port = await freePort()
    const url = `https://127.0.0.1:${port}`
    const server = await runInImage(
      first.reference,
      [...CMD.slice(0, 4), '--host', '127.0.0.1', '--port', String(port)],
      [`${mounted}:/etc/mlops/tls:ro`],
    )
    const dispatcher = new Agent({connect: {ca}})
    try {
      await waitFor(
        async () => (await undiciFetch(`${url}/v2/health/ready`, {dispatcher})).ok,
        () => `the server in ${first.reference}, which printed ${JSON.stringify(server.output())},`,
        120_000,
        server.ended,
      )
      assert.match(server.output(), new RegExp(`^ready: ${url}`, 'm'))
      const [f0, f1, f2, f3] = sample.inputs.X.data
      const body = JSON.stringify({instances: [{f0, f1, f2, f3}]})
      const curl = await execa(
        'curl',
        [
          '-sS',
          '--cacert',
          join(certs, 'ca.pem'),
          '-H',
          'content-type: application/json',
          '-d',
          body,
          `${url}/v1/predict`,
        ],
        {reject: false},
      )
      assert.equal(curl.exitCode, 0, curl.stderr)
      const prediction = (JSON.parse(curl.stdout) as {predictions: Array<{variable: number[]}>}).predictions[0]
      assert.ok(closeTo(prediction.variable[0], sample.expected_outputs.variable.data[0]))
      const plain = await fetch(`http://127.0.0.1:${port}/v2/health/ready`).catch(() => undefined)
      assert.ok(!plain?.ok, 'answered plain HTTP with a certificate mounted')
      await server.exec([...HEALTHCHECK, String(port)])
    } finally {
      await dispatcher.close()
      await server.stop()
    }
  })

  it('rebuilds only the artifact layer for a new model version', async function () {
    if (!first) this.skip()
    // A re-exported model: same graph, other bytes (the producer version), so a new artifact digest.
    const modelPath = join(project, 'model', 'xgboost_regressor.onnx')
    const bytes = readFileSync(modelPath)
    const at = bytes.indexOf('1.6.5.99')
    assert.ok(at > 0)
    bytes.write('1.6.5.98', at)
    writeFileSync(modelPath, bytes)
    const packaged = await mlops(['package', '--version', '1.0.1', '--json', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)

    const built = await mlops(['build', '1.0.1', ...buildFlags(registry!), '--dir', project])
    assert.equal(built.exitCode, 0, built.stderr + built.stdout)
    const second = built.json as BuildJson
    images.push(second.reference)
    assert.notEqual(second.artifactDigest, first.artifactDigest)
    assert.equal(second.layers.length, first.layers.length)
    assert.deepEqual(second.layers.slice(0, -1), first.layers.slice(0, -1), 'base and runtime layers are the same')
    assert.notEqual(second.layers.at(-1), first.layers.at(-1), 'the artifact layer is new')

    // The registry agrees: the compressed blobs of every runtime layer are shared between the two versions.
    const before = (await skopeo(`${registry!.address}/ml/xgb:1.0.0`, 'inspect')).Layers as string[]
    const after = (await skopeo(`${registry!.address}/ml/xgb:1.0.1`, 'inspect')).Layers as string[]
    assert.deepEqual(after.slice(0, -1), before.slice(0, -1))
    assert.notEqual(after.at(-1), before.at(-1))
  })

  it("builds the project's own Dockerfile with the project as context, with engine, repository and build args from mlops.yaml", async function () {
    if (!first) this.skip()
    const configPath = join(project, 'mlops.yaml')
    const config = readFileSync(configPath, 'utf8')
    const initDockerfile = readFileSync(join(project, 'Dockerfile'), 'utf8')
    writeFileSync(
      configPath,
      `${config}\nimage:\n  engine: buildah\n  dockerfile: Dockerfile\n  repository: localhost/xgb-own\n  buildah: {vfs: true}\n  build_args: {GREETING: hello}\n`,
    )
    writeFileSync(
      join(project, 'Dockerfile'),
      'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG GREETING\nCOPY .mlops/export/artifact.tar /app/artifact.tar\nLABEL greeting=$GREETING\n',
    )
    try {
      const built = await mlops(['build', '1.0.0', '--base-image', BASE_IMAGE, '--json', '--dir', project])
      assert.equal(built.exitCode, 0, built.stderr + built.stdout)
      assertMatchesSchema(built.json, 'build')
      const result = built.json as BuildJson
      images.push(result.reference)
      assert.equal(result.reference, 'localhost/xgb-own:1.0.0')
      assert.equal(result.generated, false)
      assert.equal(result.dockerfile, join(project, 'Dockerfile'))
      assert.equal(result.context, project)
      assert.ok(existsSync(join(project, '.mlops', 'export', 'artifact.tar')))
      assert.equal(result.labels.greeting, 'hello')
      // The engine sets the labels an own Dockerfile does not write.
      assert.equal(result.labels['dev.mlops.artifact.digest'], first.artifactDigest)
      assert.equal(result.labels['org.opencontainers.image.version'], '1.0.0')
      assert.equal(result.labels['org.opencontainers.image.base.name'], BASE_IMAGE)
    } finally {
      writeFileSync(configPath, config)
      writeFileSync(join(project, 'Dockerfile'), initDockerfile)
    }
  })

  it('the locale stage on a base without apt-get fails with a hint to build with --no-locale', async function () {
    if (!first) this.skip()
    const before = await containers()
    const built = await mlops([
      'build',
      '1.0.0',
      '--engine',
      'buildah',
      '--buildah-vfs',
      '--base-image',
      BASE_IMAGE,
      '--tag',
      'localhost/xgb-locale',
      '--json',
      '--dir',
      project,
    ])
    assert.equal(built.exitCode, 1, built.stdout)
    const {error} = built.json as ErrorJson
    assert.equal(error.code, 'IMAGE_BUILD_FAILED')
    assert.match(error.message, /apt-get: not found/)
    assert.match(error.hint, /--no-locale/)
    assert.deepEqual(await containers(), before, 'the failed stage leaves no working container behind')
  })

  it('a failing RUN step fails the build with buildah’s own error and a hint naming the Dockerfile', async function () {
    if (!first) this.skip()
    writeFileSync(
      join(project, 'broken.Dockerfile'),
      `FROM ${BASE_IMAGE}\nRUN echo "cannot fetch the tokenizer" >&2 && exit 7\n`,
    )
    const before = await containers()
    const built = await mlops([
      'build',
      '1.0.0',
      '--engine',
      'buildah',
      '--buildah-vfs',
      '--dockerfile',
      'broken.Dockerfile',
      '--tag',
      'localhost/xgb-broken',
      '--json',
      '--dir',
      project,
    ])
    assert.equal(built.exitCode, 1, built.stdout)
    const {error} = built.json as ErrorJson
    assert.equal(error.code, 'IMAGE_BUILD_FAILED')
    assert.match(error.message, /^buildah build failed \(exit code \d+\)/)
    assert.match(error.message, /exit status 7/)
    assert.match(error.hint, /broken\.Dockerfile/)
    assert.deepEqual(await containers(), before, 'the failed step leaves no working container behind')
  })
})
