import assert from 'node:assert/strict'

import {parseGatewayFlag, workloadSettings} from '../../../src/targets/kubernetes/config.js'
import {
  type HttpRoute,
  dnsLabel,
  routeFor,
  stateManifests,
  versionManifests,
  versionName,
} from '../../../src/targets/kubernetes/manifests.js'
import {versionQueries} from '../../../src/targets/kubernetes/prometheus.js'
import type {RolloutState} from '../../../src/rollout/types.js'

const naming = {model: 'credit-risk', namespace: 'ml'}
const gateway = {name: 'public', namespace: 'infra', section: 'https'}
const settings = {...workloadSettings({hostnames: ['risk.example.com']}), gateway}
const stable = {version: '1.0.0', image: 'r/m@sha256:' + 'a'.repeat(64), digest: 'sha256:' + 'b'.repeat(64)}
const candidate = {version: '1.1.0', image: 'r/m@sha256:' + 'c'.repeat(64)}

function weights(route: HttpRoute): string {
  const rule = route.spec.rules[0]
  const mirror = rule.filters?.[0]?.requestMirror.backendRef.name
  return rule.backendRefs.map((b) => `${b.name}=${b.weight}`).join(' ') + (mirror ? ` mirror ${mirror}` : '')
}

describe('Kubernetes manifests', () => {
  const table: [string, Pick<RolloutState, 'stage' | 'weight'> & {candidate?: boolean}, boolean, string][] = [
    ['full: all weight on stable', {stage: 'full', weight: 0}, true, 'credit-risk-1-0-0=100'],
    ['canary 5: 95/5', {stage: 'canary', weight: 5, candidate: true}, true, 'credit-risk-1-0-0=95 credit-risk-1-1-0=5'],
    [
      'canary 50: 50/50',
      {stage: 'canary', weight: 50, candidate: true},
      true,
      'credit-risk-1-0-0=50 credit-risk-1-1-0=50',
    ],
    [
      'shadow: stable answers, the candidate gets a mirror',
      {stage: 'shadow', weight: 0, candidate: true},
      true,
      'credit-risk-1-0-0=100 mirror credit-risk-1-1-0',
    ],
    [
      'a canary whose Deployment is not available gets no weight',
      {stage: 'canary', weight: 25, candidate: true},
      false,
      'credit-risk-1-0-0=100',
    ],
    [
      'a shadow whose Deployment is not available gets no mirror',
      {stage: 'shadow', weight: 0, candidate: true},
      false,
      'credit-risk-1-0-0=100',
    ],
  ]
  for (const [name, state, available, expected] of table)
    it(name, () => {
      const route = routeFor(
        naming,
        {stable, stage: state.stage, weight: state.weight, ...(state.candidate ? {candidate} : {})},
        settings,
        available,
      )
      assert.equal(weights(route), expected)
      assert.deepEqual(route.spec.parentRefs, [{name: 'public', namespace: 'infra', sectionName: 'https'}])
      assert.deepEqual(route.spec.hostnames, ['risk.example.com'])
    })

  it('a Deployment runs the image by digest, probes health, drops privileges and drains', () => {
    const [deployment, service] = versionManifests(naming, stable, settings) as any[]
    assert.equal(deployment.kind, 'Deployment')
    assert.equal(deployment.metadata.name, 'credit-risk-1-0-0')
    assert.equal(deployment.metadata.labels['app.kubernetes.io/name'], 'credit-risk')
    assert.equal(deployment.metadata.labels['app.kubernetes.io/version'], '1.0.0')
    assert.equal(deployment.metadata.annotations['mlops.dev/artifact-digest'], stable.digest)
    const pod = deployment.spec.template.spec
    const container = pod.containers[0]
    assert.equal(container.image, stable.image)
    assert.equal(container.readinessProbe.httpGet.path, '/v2/health/ready')
    assert.equal(container.livenessProbe.httpGet.path, '/v2/health/live')
    assert.equal(pod.securityContext.runAsNonRoot, true)
    assert.equal(container.securityContext.readOnlyRootFilesystem, true)
    assert.equal(container.securityContext.allowPrivilegeEscalation, false)
    assert.equal(pod.terminationGracePeriodSeconds, 30)
    assert.equal(deployment.spec.replicas, 2)
    assert.equal(service.kind, 'Service')
    assert.deepEqual(service.spec.selector, {
      'app.kubernetes.io/name': 'credit-risk',
      'app.kubernetes.io/version': '1.0.0',
    })
    assert.equal(service.spec.ports[0].name, 'http')
  })

  it('an autoscaler and a disruption budget only when configured; the autoscaler then owns replicas', () => {
    assert.deepEqual(
      versionManifests(naming, stable, settings).map((m) => m.kind),
      ['Deployment', 'Service'],
    )
    const scaled = workloadSettings({
      autoscaling: {min_replicas: 2, max_replicas: 6},
      disruption_budget: {min_available: 1},
    })
    const manifests = versionManifests(naming, stable, scaled) as any[]
    assert.deepEqual(
      manifests.map((m) => m.kind),
      ['Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget'],
    )
    assert.equal(manifests[0].spec.replicas, undefined)
    assert.equal(manifests[2].apiVersion, 'autoscaling/v2')
    assert.equal(manifests[2].spec.metrics[0].resource.target.averageUtilization, 70)
    assert.equal(manifests[3].spec.minAvailable, 1)
  })

  it('without a Gateway, one Service spans every version', () => {
    const state = {stable, candidate, stage: 'canary', weight: 5} as RolloutState
    const manifests = stateManifests(naming, state, workloadSettings({}, {allowNoGateway: true}))
    const shared = manifests.at(-1) as any
    assert.equal(shared.kind, 'Service')
    assert.deepEqual(shared.spec.selector, {'app.kubernetes.io/name': 'credit-risk'})
    assert.equal(manifests.filter((m) => m.kind === 'Deployment').length, 2)
  })

  it('names are DNS labels, however long or odd the version', () => {
    assert.equal(versionName('demo', '1.0.0-rc.1+build.5'), 'demo-1-0-0-rc-1-build-5')
    assert.equal(dnsLabel('9lives'), 'lives')
    const long = versionName('m'.repeat(60), '1.0.0')
    assert.ok(long.length <= 63 && /^[a-z][-a-z0-9]*[a-z0-9]$/.test(long), long)
    assert.notEqual(long, versionName('m'.repeat(60), '1.0.1'))
  })

  it('--gateway NAME[/NAMESPACE]', () => {
    assert.deepEqual(parseGatewayFlag('public'), {name: 'public'})
    assert.deepEqual(parseGatewayFlag('public/infra'), {name: 'public', namespace: 'infra'})
    assert.throws(() => parseGatewayFlag('a/b/c'), {code: 'GATEWAY_FLAG_INVALID'})
    assert.throws(() => parseGatewayFlag('Public'), {code: 'GATEWAY_FLAG_INVALID'})
  })

  it('PromQL per version counts prediction routes over the step and escapes the version', () => {
    const q = versionQueries('1.1.0"}or vector(1)', 30.4, 'namespace="ml"')
    assert.equal(
      q.requests,
      'sum(increase(mlops_requests_total{version="1.1.0\\"}or vector(1)",route=~"/v1/predict|/v2/models/infer",namespace="ml"}[30s]))',
    )
    assert.match(q.errors, /status=~"5\.\."/)
    assert.match(q.p99, /^histogram_quantile\(0\.99, sum by \(le\) \(increase\(mlops_request_duration_seconds_bucket\{/)
  })
})
