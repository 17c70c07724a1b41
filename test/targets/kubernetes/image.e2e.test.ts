// --image on the Kubernetes target against a real registry (Debian's docker-registry, images pushed by skopeo) and a real
// kube-apiserver: a tag is resolved to its digest, the image's artifact label is checked, and each failure is named.
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'
import {parse, stringify} from 'yaml'

import {freePort} from '../../image/helpers.js'
import {type TestRegistry, registryToolsMissing, startTestRegistry} from '../../registry/helpers.js'
import {BIN, MODELS_DIR, exampleProject, mlops} from '../../support/cli.js'
import {
  type ApiServer,
  missingForApiServer,
  skipOrFail,
  startApiServer,
  whileAvailable,
} from '../../support/kube-apiserver.js'
import {assertMatchesSchema} from '../../support/schema.js'

const NS = 'ml'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'

/** Pushes a one-layer image with these labels to REGISTRY/demo:TAG with skopeo; returns its manifest digest. */
async function pushImage(registry: string, tag: string, labels: Record<string, string>, work: string): Promise<string> {
  const layout = join(work, `layout-${tag}`)
  await mkdir(join(layout, 'blobs', 'sha256'), {recursive: true})
  const put = async (bytes: Buffer) => {
    const hex = createHash('sha256').update(bytes).digest('hex')
    await writeFile(join(layout, 'blobs', 'sha256', hex), bytes)
    return {digest: `sha256:${hex}`, size: bytes.length}
  }
  // An empty tar: two zero blocks.
  const layer = await put(Buffer.alloc(1024))
  const config = await put(
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {Labels: labels},
        rootfs: {type: 'layers', diff_ids: [layer.digest]},
      }),
    ),
  )
  const manifest = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: {mediaType: 'application/vnd.oci.image.config.v1+json', ...config},
        layers: [{mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer}],
      }),
    ),
  )
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  const ref = {mediaType: OCI_MANIFEST, ...manifest, annotations: {'org.opencontainers.image.ref.name': tag}}
  await writeFile(join(layout, 'index.json'), JSON.stringify({schemaVersion: 2, manifests: [ref]}))
  const digestFile = join(work, `digest-${tag}`)
  await execa('skopeo', [
    'copy',
    '--insecure-policy',
    '--dest-tls-verify=false',
    '--digestfile',
    digestFile,
    `oci:${layout}:${tag}`,
    `docker://${registry}/demo:${tag}`,
  ])
  return (await readFile(digestFile, 'utf8')).trim()
}

describe('Kubernetes target --image: resolved through a real registry', function () {
  this.timeout(600_000)
  let server: ApiServer
  let registry: TestRegistry
  let example: Awaited<ReturnType<typeof exampleProject>>
  let project: string
  let artifact: {version: string; digest: string}
  /** The digests skopeo reports for the tags pushed. */
  const pushed: Record<string, string> = {}

  before(async function () {
    skipOrFail(this, missingForApiServer() ?? (await registryToolsMissing()))
    server = await startApiServer()
    await server.installGatewayCrds()
    assert.equal((await server.api('POST', '/api/v1/namespaces', {metadata: {name: NS}})).status, 201)
    registry = await startTestRegistry(false)
    example = await exampleProject()
    project = example.project
    const config = parse(await readFile(join(project, 'mlops.yaml'), 'utf8')) as Record<string, any>
    config.deploy = {
      ...config.deploy,
      target: 'kubernetes',
      kubernetes: {namespace: NS, gateway: {name: 'public'}, replicas: 1, progress_deadline_seconds: 20},
    }
    await writeFile(join(project, 'mlops.yaml'), stringify(config))
    const packaged = await mlops(['package', '--json', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
    artifact = packaged.json as typeof artifact
    pushed.good = await pushImage(registry.address, 'good', {'dev.mlops.artifact.digest': artifact.digest}, example.tmp)
    pushed.other = await pushImage(
      registry.address,
      'other',
      {'dev.mlops.artifact.digest': `sha256:${'0'.repeat(64)}`},
      example.tmp,
    )
  })

  after(async () => {
    await server?.stop()
    await registry?.stop()
    await example?.remove()
  })

  const run = (args: string[]) =>
    execa(process.execPath, [BIN, ...args, '--json', '--dir', project], {
      reject: false,
      env: {CI: 'true', KUBECONFIG: server.adminKubeconfig},
      timeout: 180_000,
    })
  const json = (result: {stdout: unknown}) => JSON.parse(String(result.stdout)) as Record<string, any>
  const deployments = async () =>
    (await server.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments`)).body.items as {
      metadata: {name: string}
      spec: {template: {spec: {containers: {image: string}[]}}}
    }[]

  it('a tag that does not exist: IMAGE_NOT_FOUND naming the reference; nothing applied', async () => {
    const missing = `${registry.address}/demo:absent`
    const result = await run(['deploy', artifact.version, '--full', '--image', missing])
    assert.equal(result.exitCode, 2, String(result.stdout))
    const error = json(result).error
    assert.equal(error.code, 'IMAGE_NOT_FOUND')
    assert.match(error.message, new RegExp(`the image ${missing} does not exist`))
    assert.deepEqual(await deployments(), [])
  })

  it('an image built from another artifact: IMAGE_ARTIFACT_MISMATCH naming both digests and the fix', async () => {
    const result = await run(['deploy', artifact.version, '--full', '--image', `${registry.address}/demo:other`])
    assert.equal(result.exitCode, 2, String(result.stdout))
    const error = json(result).error
    assert.equal(error.code, 'IMAGE_ARTIFACT_MISMATCH')
    assert.match(
      error.message,
      new RegExp(`built from artifact sha256:0{64}, not from the artifact deployed \\(${artifact.digest}\\)`),
    )
    assert.match(error.hint, /mlops build --push/)
    assert.equal(error.details.image, `${registry.address}/demo@${pushed.other}`)
    assert.deepEqual(await deployments(), [])
  })

  it('a registry that cannot be reached: refused with the flag that keeps the tag', async () => {
    const nowhere = `127.0.0.1:${await freePort()}/demo:good`
    const result = await run(['deploy', artifact.version, '--full', '--image', nowhere])
    assert.equal(result.exitCode, 1, String(result.stdout))
    const error = json(result).error
    assert.equal(error.code, 'IMAGE_REGISTRY_UNREACHABLE')
    assert.match(error.message, /cannot be resolved to a digest: cannot reach the registry/)
    assert.match(error.hint, /--allow-unverified-image/)
    assert.deepEqual(await deployments(), [])
  })

  it('a digest reference with no artifact to compare is not looked up', async () => {
    const before = registry.requests().length
    const pinned = `127.0.0.1:${await freePort()}/demo@${pushed.good}`
    const model = join(MODELS_DIR, 'xgboost_regressor.onnx')
    const plan = await run(['deploy', '0.1.0', '--model', model, '--full', '--image', pinned, '--dry-run'])
    assert.equal(plan.exitCode, 0, String(plan.stdout))
    const manifests = json(plan).manifests as {kind: string; spec: any}[]
    const deployment = manifests.find((m) => m.kind === 'Deployment')!
    assert.equal(deployment.spec.template.spec.containers[0].image, pinned)
    assert.equal(registry.requests().length, before)
  })

  it('a tag is resolved to its digest: the Deployment runs it, the ledger and the state record it', async () => {
    const tag = `${registry.address}/demo:good`
    const pinned = `${registry.address}/demo@${pushed.good}`
    const name = `credit-risk-${artifact.version.replaceAll('.', '-')}`
    const result = await whileAvailable(server, NS, name, run(['deploy', artifact.version, '--full', '--image', tag]))
    assert.equal(result.exitCode, 0, `${result.stdout}${result.stderr}`)
    assertMatchesSchema(json(result), 'deploy')
    assert.equal(json(result).entry.image, pinned)
    const [deployment] = await deployments()
    assert.equal(deployment.spec.template.spec.containers[0].image, pinned)
    const history = json(await run(['history']))
    assertMatchesSchema(history, 'history')
    assert.equal(history.entries.at(-1).image, pinned)
    const state = await server.api('GET', `/api/v1/namespaces/${NS}/configmaps/credit-risk-mlops-rollout`)
    assert.equal(JSON.parse(state.body.data['state.json']).stable.image, pinned)
  })

  it('--allow-unverified-image keeps the tag when the registry cannot be reached, and status warns of it', async () => {
    const model = join(MODELS_DIR, 'xgboost_regressor.onnx')
    const tag = `127.0.0.1:${await freePort()}/demo:next`
    const result = await whileAvailable(
      server,
      NS,
      'credit-risk-2-0-0',
      run(['deploy', '2.0.0', '--model', model, '--canary', '10', '--image', tag, '--allow-unverified-image']),
    )
    assert.equal(result.exitCode, 0, `${result.stdout}${result.stderr}`)
    const deployment = await server.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/credit-risk-2-0-0`)
    assert.equal(deployment.body.spec.template.spec.containers[0].image, tag)
    const status = json(await run(['status']))
    assertMatchesSchema(status, 'status')
    assert.match(status.target.warning, new RegExp(`2\\.0\\.0 runs the tag ${tag}, not pinned by digest`))
  })
})
