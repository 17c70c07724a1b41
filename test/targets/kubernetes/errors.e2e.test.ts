// The errors a cluster user hits, each against a real kube-apiserver (v1.20.2): no cluster answering, a missing
// namespace, another field manager on mlops' fields; and --allow-no-gateway and shadow on the cluster, end to end.
import assert from 'node:assert/strict'
import {writeFile} from 'node:fs/promises'
import {type Socket, createServer} from 'node:net'
import {join} from 'node:path'

import {execa} from 'execa'

import {BIN, MODELS_DIR, tempDir} from '../../support/cli.js'
import {
  type ApiServer,
  digestImage,
  kubeconfigFor,
  missingForKubectl,
  skipOrFail,
  startApiServer,
  whileAvailable,
} from '../../support/kube-apiserver.js'
import {assertMatchesSchema} from '../../support/schema.js'
import {freePort} from '../../image/helpers.js'

const MODEL = join(MODELS_DIR, 'xgboost_regressor.onnx')
const NS = 'ml'
const image = digestImage

describe('Kubernetes target: named errors and fallbacks on a real API server', function () {
  this.timeout(600_000)
  let server: ApiServer
  let dir: {path: string; remove: () => Promise<void>}
  /** A second model in the same namespace, with no Gateway (--allow-no-gateway). */
  let plain: {path: string; remove: () => Promise<void>}

  before(async function () {
    skipOrFail(this, missingForKubectl())
    server = await startApiServer()
    await server.installGatewayCrds()
    assert.equal((await server.api('POST', '/api/v1/namespaces', {metadata: {name: NS}})).status, 201)
    dir = await tempDir('mlops-k8s-errors-')
    plain = await tempDir('mlops-k8s-plain-')
    const kubernetes = {namespace: NS, replicas: 1, progress_deadline_seconds: 20}
    const project = (name: string, extra: object) => ({
      name,
      model: {path: MODEL},
      deploy: {target: 'kubernetes', kubernetes: {...kubernetes, ...extra}},
    })
    await writeFile(join(dir.path, 'mlops.yaml'), JSON.stringify(project('demo', {gateway: {name: 'public'}})))
    await writeFile(join(plain.path, 'mlops.yaml'), JSON.stringify(project('plain', {})))
  })

  after(async () => {
    await server?.stop()
    await dir?.remove()
    await plain?.remove()
  })

  const run = (args: string[], options: {kubeconfig?: string; project?: string; json?: boolean} = {}) =>
    execa(
      process.execPath,
      [BIN, ...args, ...(options.json === false ? [] : ['--json']), '--dir', options.project ?? dir.path],
      {
        reject: false,
        env: {CI: 'true', KUBECONFIG: options.kubeconfig ?? server.adminKubeconfig},
        // Far above the API client's own deadline: a hang shows as timedOut, not as a named error.
        timeout: 150_000,
      },
    )
  const json = (result: {stdout: unknown}) => JSON.parse(String(result.stdout)) as Record<string, any>
  const deployAvailable = (version: string, args: string[], project = dir.path, name = 'demo') =>
    whileAvailable(
      server,
      NS,
      `${name}-${version.replaceAll('.', '-')}`,
      run(['deploy', version, '--model', MODEL, '--image', image(version), ...args], {project}),
    )
  const kubectl = async (...args: string[]) =>
    String((await execa('kubectl', ['--kubeconfig', server.adminKubeconfig, '-n', NS, ...args])).stdout)
  const weights = async () => {
    const route = JSON.parse(await kubectl('get', 'httproute', 'demo', '-o', 'json')) as {spec: {rules: any[]}}
    const rule = route.spec.rules[0] as {backendRefs: {name: string; weight: number}[]; filters?: any[]}
    return {
      weights: rule.backendRefs.map((b) => `${b.name}=${b.weight}`).join(' '),
      mirror: rule.filters?.find((f) => f.type === 'RequestMirror')?.requestMirror.backendRef.name as
        string | undefined,
    }
  }

  it('a kubeconfig pointing at a closed port: CLUSTER_UNREACHABLE at once, naming the server', async () => {
    const port = await freePort()
    const kubeconfig = await kubeconfigFor(dir.path, `https://127.0.0.1:${port}`)
    const result = await run(['status'], {kubeconfig})
    assert.equal(result.timedOut, false)
    assert.equal(result.exitCode, 1, String(result.stdout))
    const error = json(result).error
    assert.equal(error.code, 'CLUSTER_UNREACHABLE')
    assert.match(error.message, new RegExp(`https://127\\.0\\.0\\.1:${port}.*ECONNREFUSED`))
    assert.match(error.hint, /kubectl cluster-info/)
  })

  it('an API server that accepts and never answers: CLUSTER_UNREACHABLE after the deadline, no hang', async () => {
    const sockets: Socket[] = []
    const silent = createServer((socket) => sockets.push(socket))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    try {
      const {port} = silent.address() as {port: number}
      const kubeconfig = await kubeconfigFor(dir.path, `https://127.0.0.1:${port}`)
      const result = await run(['deploy', '1.0.0', '--model', MODEL, '--image', image('1.0.0'), '--full'], {
        kubeconfig,
      })
      assert.equal(result.timedOut, false, 'the command hung on a silent API server')
      assert.equal(result.exitCode, 1, String(result.stdout))
      const error = json(result).error
      assert.equal(error.code, 'CLUSTER_UNREACHABLE')
      assert.match(error.message, /no answer within \d+s/)
    } finally {
      for (const socket of sockets) socket.destroy()
      silent.close()
    }
  })

  it('a missing namespace: NAMESPACE_NOT_FOUND with the kubectl command that creates it', async () => {
    const result = await run([
      'deploy',
      '1.0.0',
      '--model',
      MODEL,
      '--image',
      image('1.0.0'),
      '--full',
      '--namespace',
      'absent',
    ])
    assert.equal(result.exitCode, 2, String(result.stdout))
    const error = json(result).error
    assert.equal(error.code, 'NAMESPACE_NOT_FOUND')
    assert.match(error.message, /namespace absent does not exist/)
    assert.match(error.hint, /kubectl create namespace absent/)
  })

  it('another field manager on the replicas or the route weights: named with the field, nothing changed; --force-conflicts takes them over', async () => {
    assert.equal((await deployAvailable('1.0.0', ['--full'])).exitCode, 0)
    const canary = await deployAvailable('1.1.0', ['--canary', '10'])
    assert.equal(canary.exitCode, 0, `${canary.stdout}${canary.stderr}`)
    assert.deepEqual(await weights(), {weights: 'demo-1-0-0=90 demo-1-1-0=10', mirror: undefined})

    // Someone changes stable's replicas by hand: kubectl now manages .spec.replicas. (kubectl scale would not do: on
    // 1.20 the scale subresource records no field manager.)
    await kubectl('patch', 'deployment', 'demo-1-0-0', '--patch', '{"spec":{"replicas":3}}')
    const refused = await run(['promote', '--to', '50'])
    assert.equal(refused.exitCode, 1, String(refused.stdout))
    const error = json(refused).error
    assert.equal(error.code, 'FIELD_MANAGER_CONFLICT')
    assert.match(error.message, /Deployment demo-1-0-0: fields mlops sets are managed by kubectl\S*: \.spec\.replicas/)
    assert.match(error.hint, /--force-conflicts/)
    assert.equal(error.details.conflicts[0].field, '.spec.replicas')
    assert.deepEqual(await weights(), {weights: 'demo-1-0-0=90 demo-1-1-0=10', mirror: undefined})
    assert.equal(json(await run(['status'])).candidate.weight, 10)

    // Taken back to 1 replica, stable's Deployment is a new generation: the test plays its controller again.
    const forced = await whileAvailable(server, NS, 'demo-1-0-0', run(['promote', '--to', '50', '--force-conflicts']))
    assert.equal(forced.exitCode, 0, String(forced.stdout))
    assert.equal(await kubectl('get', 'deployment', 'demo-1-0-0', '-o', 'jsonpath={.spec.replicas}'), '1')
    assert.deepEqual(await weights(), {weights: 'demo-1-0-0=50 demo-1-1-0=50', mirror: undefined})

    // GitOps applies its own weights to the HTTPRoute, taking the rules from mlops.
    const route = JSON.parse(await kubectl('get', 'httproute', 'demo', '-o', 'json')) as Record<string, any>
    const theirs = {
      apiVersion: route.apiVersion,
      kind: 'HTTPRoute',
      metadata: {name: 'demo', namespace: NS},
      spec: {
        parentRefs: route.spec.parentRefs,
        rules: [
          {
            backendRefs: [
              {name: 'demo-1-0-0', port: 80, weight: 70},
              {name: 'demo-1-1-0', port: 80, weight: 30},
            ],
          },
        ],
      },
    }
    const file = join(dir.path, 'route.json')
    await writeFile(file, JSON.stringify(theirs))
    await kubectl('apply', '--server-side', '--field-manager=gitops', '--force-conflicts', '-f', file)
    const blocked = await run(['promote', '--to', '80'])
    assert.equal(blocked.exitCode, 1, String(blocked.stdout))
    const conflict = json(blocked).error
    assert.equal(conflict.code, 'FIELD_MANAGER_CONFLICT')
    assert.match(conflict.message, /HTTPRoute demo: fields mlops sets are managed by gitops: .*\.spec\.rules/)
    // The dry run caught it before the state moved: the route is theirs, the rollout still at 50.
    assert.deepEqual(await weights(), {weights: 'demo-1-0-0=70 demo-1-1-0=30', mirror: undefined})
    assert.equal(json(await run(['status'])).candidate.weight, 50)

    const taken = await run(['promote', '--to', '80', '--force-conflicts'])
    assert.equal(taken.exitCode, 0, String(taken.stdout))
    assert.deepEqual(await weights(), {weights: 'demo-1-0-0=20 demo-1-1-0=80', mirror: undefined})
  })

  it('shadow on the cluster: status says plainly that agreement is unavailable there, and why', async () => {
    assert.equal((await run(['rollback'])).exitCode, 0)
    const shadow = await deployAvailable('1.2.0', ['--shadow'])
    assert.equal(shadow.exitCode, 0, `${shadow.stdout}${shadow.stderr}`)
    assert.deepEqual(await weights(), {weights: 'demo-1-0-0=100', mirror: 'demo-1-2-0'})
    const status = json(await run(['status']))
    assertMatchesSchema(status, 'status')
    assert.equal(status.stage, 'shadow')
    assert.equal(status.target.shadowAgreement.available, false)
    assert.match(status.target.shadowAgreement.reason, /RequestMirror discards the candidate's answers/)
    assert.ok(!(status.analysis?.gates ?? []).some((g: {gate: string}) => g.gate === 'agreement'))
    const human = String((await run(['status'], {json: false})).stdout)
    assert.match(human, /shadow agreement: unavailable on the Kubernetes target: .*RequestMirror/)
    assert.equal((await run(['rollback'])).exitCode, 0)
  })

  it('--allow-no-gateway: one Service over both versions, and the warning that weights are replica ratios', async () => {
    const noGateway = (version: string, ...args: string[]) =>
      deployAvailable(version, [...args, '--allow-no-gateway'], plain.path, 'plain')
    // No Gateway configured and no flag: refused, rather than a silent fallback.
    const unasked = await run(['deploy', '1.0.0', '--model', MODEL, '--image', image('1.0.0'), '--full'], {
      project: plain.path,
    })
    assert.equal(unasked.exitCode, 2, String(unasked.stdout))
    assert.equal(json(unasked).error.code, 'GATEWAY_REQUIRED')
    assert.match(json(unasked).error.hint, /--gateway NAME\[\/NAMESPACE\].*--allow-no-gateway/)
    assert.equal(await kubectl('get', 'deployment', '-o', 'name', '-l', 'app.kubernetes.io/name=plain'), '')
    const first = await noGateway('1.0.0', '--full')
    assert.equal(first.exitCode, 0, `${first.stdout}${first.stderr}`)
    const canary = await noGateway('1.1.0', '--canary', '25')
    assert.equal(canary.exitCode, 0, `${canary.stdout}${canary.stderr}`)
    assertMatchesSchema(json(canary), 'deploy')
    assert.match(json(canary).status.target.warning, /replica ratio/)

    const shared = JSON.parse(await kubectl('get', 'service', 'plain', '-o', 'json')) as {spec: {selector: object}}
    assert.deepEqual(shared.spec.selector, {'app.kubernetes.io/name': 'plain'})
    const services = await kubectl('get', 'service', '-o', 'name', '-l', 'app.kubernetes.io/name=plain')
    assert.deepEqual(services.split('\n').sort(), ['service/plain', 'service/plain-1-0-0', 'service/plain-1-1-0'])
    assert.doesNotMatch(await kubectl('get', 'httproute', '-o', 'name'), /\/plain$/m)

    const status = json(await run(['status'], {project: plain.path}))
    assert.equal(status.candidate.weight, 25)
    assert.match(status.target.warning, /splits by ready pods \(replica ratio\), not by the canary weight/)
    const human = String((await run(['status'], {project: plain.path, json: false})).stdout)
    assert.match(human, /warning: no Gateway: one Service spans every version/)
  })
})
