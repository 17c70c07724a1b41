// End to end: the built CLI tests the packaged credit-risk example on the real server it starts, healthy and with each injected fault.
import assert from 'node:assert/strict'
import {type ChildProcess, spawn} from 'node:child_process'
import {once} from 'node:events'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {createInterface} from 'node:readline'

import {execa} from 'execa'
import {parse, parseDocument} from 'yaml'

import type {TestResult} from '../../src/checks/types.js'
import {BIN, MODELS_DIR, exampleProject, mlops, tempDir} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'

// Short enough for a test, long enough for a verdict: 300 requests at 100 rps give p99 two samples above it.
const CHECKS = `
checks:
  load: {rate: 100, concurrency: 32, duration: 3s, warmup: 1s}
  latency: {gates: ["p50 <= 25ms", "p99 <= 100ms"], min_tail_samples: 2}
  robustness: {cases: 80}
`

/** [check, gate name, number of <failure> elements] per testcase, read by Python's XML parser as an independent check. */
async function junitCases(path: string): Promise<[string, string, number][]> {
  const script =
    'import sys, json\nfrom xml.dom import minidom\nd = minidom.parse(sys.argv[1])\nprint(json.dumps([[c.getAttribute("classname"), c.getAttribute("name"), len(c.getElementsByTagName("failure"))] for c in d.getElementsByTagName("testcase")]))'
  const {stdout} = await execa('/usr/bin/python3', ['-c', script, path])
  return JSON.parse(String(stdout))
}

function failedGates(result: TestResult): string[] {
  assert.ok(result.gates, `a test result, not: ${JSON.stringify(result)}`)
  return result.gates
    .filter((g) => g.verdict !== 'passed')
    .map((g) => `${g.check}:${g.name}:${g.verdict}`)
    .sort()
}

describe('mlops test on the bundled example (e2e)', function () {
  this.timeout(180_000)
  let example: Awaited<ReturnType<typeof exampleProject>>
  let project: string

  before(async () => {
    example = await exampleProject()
    project = example.project
    // Shorter load phases than the example's own checks section, so the suite stays quick.
    const config = parseDocument(await readFile(join(project, 'mlops.yaml'), 'utf8'))
    config.set('checks', parse(CHECKS).checks)
    await writeFile(join(project, 'mlops.yaml'), config.toString())
    const packaged = await mlops(['package', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
  })
  after(() => example.remove())

  const run = async (args: string[], env: Record<string, string> = {}) => {
    const junit = join(example.tmp, `junit-${Date.now()}.xml`)
    const result = await mlops(['test', ...args, '--json', '--junit', junit, '--dir', project], {
      env,
      timeoutMs: 170_000,
    })
    assert.ok(result.json, `--json printed JSON:\n${result.stdout}\n${result.stderr}`)
    if (!(result.json as {error?: unknown}).error) assertMatchesSchema(result.json, 'test')
    return {...result, result: result.json as TestResult, junit}
  }

  it('passes every gate of all four checks on a healthy server, with JUnit, HTML and a baseline of the same version', async () => {
    const html = join(example.tmp, 'report.html')
    const {exitCode, result, junit, stderr} = await run(['1.0.0', '--baseline', '1.0.0', '--html', html])
    assert.deepEqual(failedGates(result), [], stderr)
    assert.equal(exitCode, 0)
    assert.equal(result.verdict, 'passed')
    assert.deepEqual(result.checks, ['regression', 'load', 'latency', 'robustness'])
    assert.equal(result.server.started, true)
    assert.equal(result.regression!.golden.passed, 20)
    assert.equal(result.regression!.baseline!.agreement, 1)
    assert.equal(result.load!.requests, 'reference')
    assert.equal(result.load!.phases[0].requests, 300)
    assert.ok(result.robustness!.run >= 80)
    const cases = await junitCases(junit)
    assert.equal(cases.length, result.gates.length, 'one testcase per gate')
    assert.deepEqual(
      cases.filter(([, , failures]) => failures > 0),
      [],
    )
    assert.ok(cases.some(([classname, name]) => classname === 'checks.latency' && name === 'p99 <= 100ms at 100 rps'))
    const page = await readFile(html, 'utf8')
    assert.ok((page.match(/<svg /g) ?? []).length >= 2, 'a percentile chart and a histogram')
    assert.match(page, /Latency percentiles/)
    assert.doesNotMatch(page, /<script|<link|src="http|href="http/)
  })

  it('fails exactly the latency gates when the server is slow, and JUnit names them', async () => {
    const {exitCode, result, junit} = await run([], {MLOPS_FAULT_LATENCY_MS: '120'})
    assert.equal(exitCode, 1)
    assert.deepEqual(failedGates(result), [
      'latency:p50 <= 25ms at 100 rps:failed',
      'latency:p99 <= 100ms at 100 rps:failed',
    ])
    const failing = (await junitCases(junit)).filter(([, , f]) => f > 0).map(([c, n]) => `${c} ${n}`)
    assert.deepEqual(failing.sort(), [
      'checks.latency p50 <= 25ms at 100 rps',
      'checks.latency p99 <= 100ms at 100 rps',
    ])
    assert.match(
      await readFile(junit, 'utf8'),
      /<failure message="p99 &lt;= 100ms at 100 rps: 1\d\d(\.\d+)? ms &gt; 100 ms"/,
    )
  })

  it('fails exactly the error-rate gate when a share of requests get a 500', async () => {
    const {exitCode, result, junit} = await run([], {MLOPS_FAULT_ERROR_RATE: '0.05'})
    assert.equal(exitCode, 1)
    assert.deepEqual(failedGates(result), ['load:error_rate:failed'])
    assert.ok(result.load!.phases[0].statuses['500'] > 3, JSON.stringify(result.load!.phases[0].statuses))
    assert.deepEqual(
      (await junitCases(junit)).filter(([, , f]) => f > 0).map(([c, n]) => `${c} ${n}`),
      ['checks.load error_rate'],
    )
  })

  it('fails the robustness gates when one input crashes the server, naming the request', async () => {
    const {exitCode, result, junit} = await run(['--only', 'load,robustness', '--duration', '1s'], {
      MLOPS_FAULT_CRASH_ON: 'never-seen-category',
    })
    assert.equal(exitCode, 1)
    assert.deepEqual(failedGates(result), ['robustness:failed_cases:failed', 'robustness:server_up:failed'])
    const crash = result.robustness!.failures.find((f) => f.outcome === 'crash')!
    assert.match(crash.name, /is a category never seen/)
    assert.match(crash.detail!, /the server process ended \(SIGKILL\)/)
    assert.ok(crash.request!.body.includes('never-seen-category'))
    assert.ok(result.robustness!.notRun > 0, 'the cases after the crash were not sent')
    const failing = (await junitCases(junit)).filter(([, , f]) => f > 0).map(([c, n]) => `${c} ${n}`)
    assert.deepEqual(failing.sort(), ['checks.robustness failed_cases', 'checks.robustness server_up'])
  })

  it('fails exactly the regression gate when predictions are wrong', async () => {
    const {exitCode, result} = await run([], {MLOPS_FAULT_WRONG: '1'})
    assert.equal(exitCode, 1)
    assert.deepEqual(failedGates(result), ['regression:golden:failed'])
    assert.equal(result.regression!.golden.failed, 20)
  })

  it('fails the baseline gates when the candidate disagrees with the version in production', async () => {
    const wrong = await startServe(['1.0.0', '--dir', project], {MLOPS_FAULT_WRONG: '1'})
    try {
      const {exitCode, result, junit} = await run([
        '1.0.0',
        '--url',
        wrong.url,
        '--baseline',
        '1.0.0',
        '--only',
        'regression',
      ])
      assert.equal(exitCode, 1)
      assert.equal(result.server.started, false)
      assert.deepEqual(failedGates(result), [
        'regression:agreement:failed',
        'regression:flip_rate:failed',
        'regression:golden:failed',
        'regression:max_abs_diff:failed',
        'regression:mean_abs_diff:failed',
      ])
      const baseline = result.regression!.baseline!
      assert.equal(baseline.examples, 200)
      assert.equal(baseline.agreement, 0)
      assert.ok(baseline.flipRate > 0.1)
      assert.equal((await junitCases(junit)).filter(([, , f]) => f > 0).length, 5)
    } finally {
      wrong.child.kill('SIGTERM')
      await once(wrong.child, 'exit')
    }
  })

  it('exits 2 on a usage error', async () => {
    const only = await mlops(['test', '--only', 'speed', '--json', '--dir', project])
    assert.equal(only.exitCode, 2)
    assert.equal((only.json as {error: {code: string}}).error.code, 'TEST_ONLY_INVALID')
    const duration = await mlops(['test', '--duration', 'soon', '--dir', project])
    assert.equal(duration.exitCode, 2)
    assert.match(duration.stderr, /duration "soon" is not a duration/)
  })
})

describe('mlops test on a model of the development set (e2e)', function () {
  this.timeout(120_000)
  it('tests mnist_cnn from init to passing gates: tensor golden cases over v2, robustness on the raw inputs', async () => {
    const dir = await tempDir('mlops-test-mnist-')
    try {
      const project = join(dir.path, 'mnist')
      const init = await mlops([
        'init',
        project,
        '--model',
        join(MODELS_DIR, 'mnist_cnn.onnx'),
        '--sample',
        join(MODELS_DIR, 'mnist_cnn.json'),
        '--yes',
      ])
      assert.equal(init.exitCode, 0, init.stderr)
      assert.equal((await mlops(['package', '--dir', project])).exitCode, 0)
      const tested = await mlops(
        [
          'test',
          '--only',
          'regression,load,robustness',
          '--rate',
          '50',
          '--duration',
          '2s',
          '--json',
          '--dir',
          project,
        ],
        {timeoutMs: 110_000},
      )
      const result = tested.json as TestResult
      assertMatchesSchema(result, 'test')
      assert.deepEqual(failedGates(result), [], tested.stderr)
      assert.equal(tested.exitCode, 0)
      assert.equal(result.load!.requests, 'golden')
      assert.ok(result.regression!.golden.total >= 1)
    } finally {
      await dir.remove()
    }
  })
})

async function startServe(args: string[], env: Record<string, string>): Promise<{child: ChildProcess; url: string}> {
  const child = spawn('node', [BIN, 'serve', ...args, '--port', '0', '--json'], {
    env: {...process.env, ...env, CI: 'true'},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const [line] = (await once(createInterface({input: child.stdout}), 'line')) as [string]
  return {child, url: (JSON.parse(line) as {url: string}).url}
}
