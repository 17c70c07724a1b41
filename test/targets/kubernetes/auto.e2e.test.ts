// --auto on the Kubernetes target: a real Prometheus scrapes local "mlops serve" processes (standing in for the pods,
// which cannot run here) and the waiting command promotes on passing figures and rolls back on a failing gate.
import assert from 'node:assert/strict'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {type ResultPromise, execa} from 'execa'
import {request} from 'undici'

import {BIN, MODELS_DIR, tempDir} from '../../support/cli.js'
import {
  type ApiServer,
  digestImage,
  missingForApiServer,
  onPath,
  skipOrFail,
  startApiServer,
} from '../../support/kube-apiserver.js'

const MODEL = join(MODELS_DIR, 'xgboost_regressor.onnx')
const BODY = JSON.stringify({instances: [{X: [1, 2, 3, 4]}]})
const NS = 'ml'
const image = digestImage
const base = 19_900 + (process.pid % 50) * 4

describe('Kubernetes target --auto, judged from Prometheus', function () {
  this.timeout(600_000)
  let server: ApiServer
  let dir: {path: string; remove: () => Promise<void>}
  const children: ResultPromise[] = []
  let traffic = true

  before(async function () {
    skipOrFail(
      this,
      missingForApiServer() ?? (onPath('prometheus') ? undefined : 'prometheus (apt-get install prometheus)'),
    )
    server = await startApiServer()
    await server.installGatewayCrds()
    assert.equal((await server.api('POST', '/api/v1/namespaces', {metadata: {name: NS}})).status, 201)
    dir = await tempDir('mlops-k8s-auto-')
    // One model server per version, as the pods would be; 1.2.0 fails half its requests.
    const versions = [
      ['1.0.0', base, {}],
      ['1.1.0', base + 1, {}],
      ['1.2.0', base + 2, {MLOPS_FAULT_ERROR_RATE: '0.5'}],
    ] as const
    for (const [version, port, env] of versions)
      children.push(
        execa(
          process.execPath,
          [BIN, 'serve', '--model', MODEL, '--model-version', version, '--host', '127.0.0.1', '--port', String(port)],
          {
            env: {CI: 'true', ...env},
            reject: false,
          },
        ),
      )
    const targets = versions.map(([, port]) => `'127.0.0.1:${port}'`).join(', ')
    await writeFile(
      join(dir.path, 'prometheus.yml'),
      `global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: models\n    static_configs: [{targets: [${targets}]}]\n`,
    )
    const promPort = base + 3
    children.push(
      execa(
        'prometheus',
        [
          `--config.file=${join(dir.path, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir.path, 'tsdb')}`,
          `--web.listen-address=127.0.0.1:${promPort}`,
        ],
        {reject: false},
      ),
    )
    for (const [, port] of versions) {
      while ((await request(`http://127.0.0.1:${port}/v2/health/ready`).catch(() => undefined))?.statusCode !== 200)
        await sleep(200)
    }
    void (async () => {
      while (traffic) {
        await Promise.all(
          versions.map(([, port]) =>
            request(`http://127.0.0.1:${port}/v1/predict`, {
              method: 'POST',
              body: BODY,
              headers: {'content-type': 'application/json'},
            })
              .then((r) => r.body.dump())
              .catch(() => undefined),
          ),
        )
        await sleep(20)
      }
    })()
    const config = {
      name: 'demo',
      model: {path: MODEL},
      deploy: {
        target: 'kubernetes',
        steps: [50],
        kubernetes: {namespace: NS, gateway: {name: 'public'}, replicas: 1, progress_deadline_seconds: 30},
        analysis: {
          prometheus: {url: `http://127.0.0.1:${promPort}`},
          interval_seconds: 1,
          min_requests: 20,
          bake_seconds: 3,
          deadline_seconds: 60,
          gates: {latency: {slack_ms: 500, max_p99_ratio: 3}},
        },
      },
    }
    await writeFile(join(dir.path, 'mlops.yaml'), JSON.stringify(config, null, 2))
  })

  after(async () => {
    traffic = false
    for (const child of children) child.kill('SIGTERM')
    await Promise.all(children)
    await server?.stop()
    await dir?.remove()
  })

  const deploy = async (version: string, ...args: string[]) => {
    const until = {settled: false}
    const running = execa(
      process.execPath,
      [BIN, 'deploy', version, '--model', MODEL, '--image', image(version), ...args, '--json', '--dir', dir.path],
      {
        reject: false,
        env: {CI: 'true', KUBECONFIG: server.adminKubeconfig},
        timeout: 240_000,
      },
    )
    void running.finally(() => (until.settled = true))
    const name = `demo-${version.replaceAll('.', '-')}`
    while (!until.settled) {
      const got = await server.api('GET', `/apis/apps/v1/namespaces/${NS}/deployments/${name}`)
      if (got.status === 200 && !got.body.status?.availableReplicas) {
        await server.api(
          'PATCH',
          `/apis/apps/v1/namespaces/${NS}/deployments/${name}/status`,
          {
            status: {
              observedGeneration: got.body.metadata.generation,
              replicas: 1,
              updatedReplicas: 1,
              readyReplicas: 1,
              availableReplicas: 1,
            },
          },
          'application/merge-patch+json',
        )
      }
      await sleep(200)
    }
    const result = await running
    return {exitCode: result.exitCode, body: JSON.parse(String(result.stdout)) as Record<string, any>}
  }

  it('promotes on passing figures and rolls back on a failing error-rate gate', async () => {
    const first = await deploy('1.0.0', '--full')
    assert.equal(first.exitCode, 0, JSON.stringify(first.body))
    const passing = await deploy('1.1.0', '--canary', '50', '--auto', '--wait')
    assert.equal(passing.exitCode, 0, JSON.stringify(passing.body))
    assert.equal(passing.body.outcome.result, 'promoted')
    const failing = await deploy('1.2.0', '--canary', '50', '--auto', '--wait')
    assert.equal(failing.exitCode, 1, JSON.stringify(failing.body))
    assert.equal(failing.body.error.code, 'ROLLED_BACK')
    assert.match(failing.body.error.message, /error_rate/)
  })
})
