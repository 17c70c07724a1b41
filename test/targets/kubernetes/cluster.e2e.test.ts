// The Kubernetes target against a real kube-apiserver (v1.20.2, etcd, RBAC, Gateway API CRDs): the CLI as users run it,
// kubectl to look, and the test playing the kubelet and the Deployment controller (no pod runs here, no traffic flows).
import assert from 'node:assert/strict'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {execa} from 'execa'
import {parseAllDocuments} from 'yaml'

import {assertMatchesSchema} from '../../support/schema.js'
import {BIN, MODELS_DIR, tempDir} from '../../support/cli.js'
import {
  type ApiServer,
  digestImage,
  missingForKubectl,
  skipOrFail,
  startApiServer,
  whileAvailable,
} from '../../support/kube-apiserver.js'

const MODEL = join(MODELS_DIR, 'xgboost_regressor.onnx')
const NS = 'ml'
const image = digestImage

describe('Kubernetes target on a real API server', function () {
  this.timeout(600_000)
  let server: ApiServer
  const dirs: {path: string; remove: () => Promise<void>}[] = []
  let first: string
  let second: string

  before(async function () {
    skipOrFail(this, missingForKubectl())
    server = await startApiServer()
    const created = await server.api('POST', '/api/v1/namespaces', {metadata: {name: NS}})
    assert.equal(created.status, 201)
    for (const _ of [0, 1]) {
      const dir = await tempDir('mlops-k8s-')
      dirs.push(dir)
      const config = {
        name: 'demo',
        model: {path: MODEL},
        deploy: {
          target: 'kubernetes',
          kubernetes: {
            namespace: NS,
            gateway: {name: 'public', namespace: 'infra'},
            replicas: 2,
            progress_deadline_seconds: 20,
          },
        },
      }
      await writeFile(join(dir.path, 'mlops.yaml'), JSON.stringify(config, null, 2))
    }
    ;[first, second] = dirs.map((d) => d.path)
  })

  after(async () => {
    await server?.stop()
    for (const dir of dirs) await dir.remove()
  })

  const run = (args: string[], options: {dir?: string; kubeconfig?: string} = {}) =>
    execa(process.execPath, [BIN, ...args, '--json', '--dir', options.dir ?? first], {
      reject: false,
      env: {CI: 'true', MLOPS_ACTOR: 'ci-bot', KUBECONFIG: options.kubeconfig ?? server.adminKubeconfig},
      timeout: 180_000,
    })
  const json = (result: {stdout: unknown}) => JSON.parse(String(result.stdout)) as Record<string, any>

  const kubectl = async (...args: string[]) =>
    String((await execa('kubectl', ['--kubeconfig', server.adminKubeconfig, '-n', NS, ...args])).stdout)

  /** The route's backends as "name=weight" and its mirror, as kubectl shows them. */
  const route = async () => {
    const text = await kubectl('get', 'httproute', 'demo', '-o', 'json')
    const rule = (JSON.parse(text) as {spec: {rules: any[]}}).spec.rules[0]
    return {
      weights: (rule.backendRefs as {name: string; weight: number}[]).map((b) => `${b.name}=${b.weight}`).join(' '),
      mirror: (rule.filters as any[] | undefined)?.find((f) => f.type === 'RequestMirror')?.requestMirror.backendRef
        .name,
    }
  }

  /** Plays the kubelet: a pod of the version whose container waits (an image it cannot pull, a crash loop). */
  const waitingPod = async (version: string, waiting: {reason: string; message: string}) => {
    const name = `demo-${version.replaceAll('.', '-')}-abcde`
    const labels = {'app.kubernetes.io/name': 'demo', 'app.kubernetes.io/version': version}
    const pod = await server.api('POST', `/api/v1/namespaces/${NS}/pods`, {
      metadata: {name, labels},
      spec: {containers: [{name: 'model-server', image: image(version)}]},
    })
    assert.equal(pod.status, 201, JSON.stringify(pod.body))
    const containerStatus = {name: 'model-server', image: image(version), imageID: '', ready: false, restartCount: 0}
    const status = await server.api(
      'PATCH',
      `/api/v1/namespaces/${NS}/pods/${name}/status`,
      {status: {phase: 'Pending', containerStatuses: [{...containerStatus, state: {waiting}}]}},
      'application/merge-patch+json',
    )
    assert.equal(status.status, 200, JSON.stringify(status.body))
  }

  /** Plays the Deployment controller: the version's Deployment (2 replicas wanted) has `available` of them available. */
  const availableReplicas = async (version: string, available: number) => {
    const patched = await server.api(
      'PATCH',
      `/apis/apps/v1/namespaces/${NS}/deployments/demo-${version.replaceAll('.', '-')}/status`,
      {status: {readyReplicas: available, availableReplicas: available}},
      'application/merge-patch+json',
    )
    assert.equal(patched.status, 200, JSON.stringify(patched.body))
  }

  /** Crash-loops the version's pods, then "promote --to 50" must fail naming that version and why. */
  const promoteFailsOn = async (version: string) => {
    await waitingPod(version, {reason: 'CrashLoopBackOff', message: 'back-off 5m0s restarting failed container'})
    await availableReplicas(version, 0)
    const result = await run(['promote', '--to', '50'])
    assert.equal(result.exitCode, 1, String(result.stdout))
    const error = json(result).error
    assert.equal(error.code, 'RELEASE_UNAVAILABLE')
    const named = `${version} has no available replicas after 20s: CrashLoopBackOff`
    assert.ok(error.message.startsWith(named), error.message)
  }

  /** `mlops history` as a person reads it: the newest entry's line. */
  const lastHistoryLine = async () => {
    const result = await execa(process.execPath, [BIN, 'history', '--limit', '1', '--dir', first], {
      env: {CI: 'true', KUBECONFIG: server.adminKubeconfig},
    })
    return String(result.stdout).trim().split('\n').at(-1)!
  }

  const deployAvailable = (version: string, ...args: string[]) =>
    whileAvailable(
      server,
      NS,
      `demo-${version.replaceAll('.', '-')}`,
      run(['deploy', version, '--model', MODEL, '--image', image(version), ...args]),
    )

  it('without the Gateway API CRDs, names them and the command that installs them', async () => {
    const result = await run(['deploy', '0.9.0', '--model', MODEL, '--image', image('0.9.0'), '--full'])
    assert.equal(result.exitCode, 2, String(result.stdout))
    const error = json(result).error
    assert.equal(error.code, 'GATEWAY_API_MISSING')
    assert.match(error.hint, /standard-install\.yaml/)
    assert.match(error.hint, /--allow-no-gateway/)
    assert.equal((await server.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments`)).body.items.length, 0)
  })

  it('deploys in full, then shadow, canary, promote and rollback move the HTTPRoute; another folder sees the same', async () => {
    await server.installGatewayCrds()
    const full = await deployAvailable('1.0.0', '--full')
    assert.equal(full.exitCode, 0, `${full.stdout}${full.stderr}`)
    assertMatchesSchema(json(full), 'deploy')
    const objects = await kubectl('get', 'deployment,service,httproute', '-o', 'name')
    assert.match(objects, /deployment.apps\/demo-1-0-0/)
    assert.match(objects, /service\/demo-1-0-0/)
    assert.match(objects, /httproute.gateway.networking.k8s.io\/demo/)
    assert.deepEqual(await route(), {weights: 'demo-1-0-0=100', mirror: undefined})
    // Through the API: kubectl past 1.20 hides managedFields, and CI's kubectl is 1.20's.
    const deployment = (await server.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/demo-1-0-0`)).body
    const container = deployment.spec.template.spec.containers[0]
    assert.equal(container.image, image('1.0.0'))
    assert.equal(container.readinessProbe.httpGet.path, '/v2/health/ready')
    assert.equal(container.securityContext.readOnlyRootFilesystem, true)
    assert.equal(deployment.metadata.labels['app.kubernetes.io/version'], '1.0.0')
    assert.ok(deployment.metadata.managedFields.some((f: {manager: string}) => f.manager === 'mlops'))

    const shadow = await deployAvailable('1.1.0', '--shadow')
    assert.equal(shadow.exitCode, 0, `${shadow.stdout}${shadow.stderr}`)
    assert.deepEqual(await route(), {weights: 'demo-1-0-0=100', mirror: 'demo-1-1-0'})
    const back = await run(['rollback'])
    assert.equal(back.exitCode, 0, String(back.stdout))
    assertMatchesSchema(json(back), 'rollback')
    assert.deepEqual(await route(), {weights: 'demo-1-0-0=100', mirror: undefined})
    assert.doesNotMatch(await kubectl('get', 'deployment', '-o', 'name'), /demo-1-1-0/)

    const canary = await deployAvailable('1.1.0', '--canary', '5')
    assert.equal(canary.exitCode, 0, `${canary.stdout}${canary.stderr}`)
    assert.deepEqual(await route(), {weights: 'demo-1-0-0=95 demo-1-1-0=5', mirror: undefined})
    const half = await run(['promote', '--to', '50'])
    assert.equal(half.exitCode, 0, String(half.stdout))
    assertMatchesSchema(json(half), 'promote')
    assert.deepEqual(await route(), {weights: 'demo-1-0-0=50 demo-1-1-0=50', mirror: undefined})

    const here = json(await run(['status']))
    const there = json(await run(['status'], {dir: second}))
    assertMatchesSchema(there, 'status')
    assert.equal(there.stage, 'canary')
    assert.equal(there.candidate.weight, 50)
    assert.deepEqual({...there, analysis: undefined}, {...here, analysis: undefined})
    assert.deepEqual(json(await run(['history'], {dir: second})), json(await run(['history'])))

    const done = await run(['promote'])
    assert.equal(done.exitCode, 0, String(done.stdout))
    assert.deepEqual(await route(), {weights: 'demo-1-1-0=100', mirror: undefined})
    assert.doesNotMatch(await kubectl('get', 'deployment,service', '-o', 'name'), /demo-1-0-0/)

    const history = json(await run(['history'], {dir: second}))
    assertMatchesSchema(history, 'history')
    assert.deepEqual(
      history.entries.map((e: {action: string; version: string}) => `${e.action} ${e.version}`),
      ['deploy 1.0.0', 'deploy 1.1.0', 'rollback 1.1.0', 'deploy 1.1.0', 'promote 1.1.0', 'promote 1.1.0'],
    )
  })

  it('--output yaml writes the manifests and --dry-run prints them with the plan; neither applies anything', async () => {
    const yaml = await execa(
      process.execPath,
      [
        BIN,
        'deploy',
        '1.5.0',
        '--model',
        MODEL,
        '--image',
        image('1.5.0'),
        '--canary',
        '10',
        '--output',
        'yaml',
        '--dir',
        first,
      ],
      {reject: false, env: {CI: 'true', KUBECONFIG: server.adminKubeconfig}},
    )
    assert.equal(yaml.exitCode, 0, String(yaml.stderr))
    const documents = parseAllDocuments(String(yaml.stdout)).map(
      (d) => d.toJSON() as {kind: string; metadata: {name: string}},
    )
    assert.deepEqual(
      documents.map((d) => `${d.kind}/${d.metadata.name}`),
      ['Deployment/demo-1-1-0', 'Service/demo-1-1-0', 'Deployment/demo-1-5-0', 'Service/demo-1-5-0', 'HTTPRoute/demo'],
    )
    assert.match(String(yaml.stdout), /weight: 90\n/)
    const plan = json(
      await run(['deploy', '1.5.0', '--model', MODEL, '--image', image('1.5.0'), '--canary', '10', '--dry-run']),
    )
    assertMatchesSchema(plan, 'deploy')
    assert.equal(plan.plan.to.weight, 10)
    assert.equal(plan.manifests.length, 5)
    assert.doesNotMatch(await kubectl('get', 'deployment', '-o', 'name'), /demo-1-5-0/)
    assert.deepEqual(await route(), {weights: 'demo-1-1-0=100', mirror: undefined})
  })

  it('a user without RBAC rights gets the verb, the resource and the Role to ask for', async () => {
    const result = await run(['status'], {kubeconfig: server.limitedKubeconfig})
    assert.equal(result.exitCode, 1, String(result.stdout))
    const error = json(result).error
    assert.equal(error.code, 'FORBIDDEN')
    assert.match(error.message, /refuses to get configmaps in namespace ml/)
    assert.match(error.hint, /mlops-deployer/)
  })

  it('a command killed with kill -9 mid-deploy is continued by the next', async () => {
    const killed = run(['deploy', '1.2.0', '--model', MODEL, '--image', image('1.2.0'), '--canary', '5'])
    for (;;) {
      const got = await server.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/demo-1-2-0`)
      if (got.status === 200) break
      await sleep(100)
    }
    killed.kill('SIGKILL')
    await killed
    assert.deepEqual(await route(), {weights: 'demo-1-1-0=100', mirror: undefined})
    const again = await deployAvailable('1.2.0', '--canary', '5')
    assert.equal(again.exitCode, 0, `${again.stdout}${again.stderr}`)
    assert.deepEqual(await route(), {weights: 'demo-1-1-0=95 demo-1-2-0=5', mirror: undefined})
    const back = await run(['rollback'])
    assert.equal(back.exitCode, 0, String(back.stdout))
    assert.deepEqual(await route(), {weights: 'demo-1-1-0=100', mirror: undefined})
  })

  it('a candidate whose pods cannot pull their image is rolled back with the reason', async () => {
    const pending = run(['deploy', '1.3.0', '--model', MODEL, '--image', image('1.3.0'), '--canary', '5'])
    await waitingPod('1.3.0', {reason: 'ImagePullBackOff', message: `Back-off pulling image "${image('1.3.0')}"`})
    const result = await pending
    assert.equal(result.exitCode, 1, String(result.stdout))
    const error = json(result).error
    assert.equal(error.code, 'RELEASE_UNAVAILABLE')
    assert.match(error.message, /ImagePullBackOff: Back-off pulling image/)
    assert.deepEqual(await route(), {weights: 'demo-1-1-0=100', mirror: undefined})
    assert.doesNotMatch(await kubectl('get', 'deployment', '-o', 'name'), /demo-1-3-0/)
    const last = json(await run(['history', '--limit', '1'], {dir: second})).entries[0]
    assert.equal(last.action, 'rollback')
    assert.equal(last.version, '1.3.0')
    assert.match(last.reason, /ImagePullBackOff/)
  })

  it("stable's pods unavailable during a promote: the promote fails naming stable, nothing is rolled back or recorded", async () => {
    const canary = await deployAvailable('1.6.0', '--canary', '5')
    assert.equal(canary.exitCode, 0, `${canary.stdout}${canary.stderr}`)
    const ledger = json(await run(['history']))
    const {revision} = json(await run(['status']))
    await promoteFailsOn('1.1.0')
    assert.deepEqual(json(await run(['history'])), ledger)
    const status = json(await run(['status']))
    assert.deepEqual([status.stable.version, status.candidate.version, status.candidate.weight], ['1.1.0', '1.6.0', 5])
    assert.equal(status.revision, revision)
    assert.deepEqual(await route(), {weights: 'demo-1-1-0=95 demo-1-6-0=5', mirror: undefined})
    assert.match(await lastHistoryLine(), /ci-bot +deploy +1\.6\.0 +1\.1\.0 full +1\.6\.0 5% /)

    assert.equal((await server.api('DELETE', `/api/v1/namespaces/${NS}/pods/demo-1-1-0-abcde`)).status, 200)
    await availableReplicas('1.1.0', 2)
    const back = await run(['rollback'])
    assert.equal(back.exitCode, 0, String(back.stdout))
  })

  it("a candidate's pods unavailable during a promote: the candidate is rolled back, its resources removed", async () => {
    const canary = await deployAvailable('1.7.0', '--canary', '5')
    assert.equal(canary.exitCode, 0, `${canary.stdout}${canary.stderr}`)
    await promoteFailsOn('1.7.0')
    const status = json(await run(['status'], {dir: second}))
    assert.deepEqual([status.stage, status.stable.version, status.candidate], ['full', '1.1.0', undefined])
    assert.deepEqual(
      [status.outcome.version, status.outcome.result, status.outcome.gate],
      ['1.7.0', 'rolled-back', 'deadline'],
    )
    assert.deepEqual(await route(), {weights: 'demo-1-1-0=100', mirror: undefined})
    assert.doesNotMatch(await kubectl('get', 'deployment,service', '-o', 'name'), /demo-1-7-0/)
    const last = json(await run(['history', '--limit', '1'], {dir: second})).entries[0]
    assert.deepEqual(
      [last.action, last.automatic, last.version, last.gate, last.from.candidate, last.to.candidate],
      ['rollback', true, '1.7.0', 'deadline', '1.7.0', undefined],
    )
    assert.match(last.reason, /^never became available: CrashLoopBackOff/)
    assert.match(
      await lastHistoryLine(),
      /rollback \(auto\) +1\.7\.0 +1\.7\.0 5% +1\.1\.0 full +never became available: CrashLoopBackOff/,
    )
  })
})
