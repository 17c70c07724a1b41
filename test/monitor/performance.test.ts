// Outcome metrics equal scikit-learn's on the same pairs; feedback joined to logged predictions through the CLI and a live server.
import assert from 'node:assert/strict'
import {mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {execa} from 'execa'

import {classificationMetrics, regressionMetrics} from '../../src/monitor/outcomes.js'
import {mlops, tempDir} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'
import {logEverything, post, start} from '../serve/helpers.js'
import {random} from './helpers.js'

const SKLEARN = `
import json, sys, math
from sklearn import metrics
from sklearn.calibration import calibration_curve
out = []
for case in json.load(sys.stdin):
    if case["kind"] == "regression":
        t, p = case["truth"], case["predicted"]
        out.append({"mae": metrics.mean_absolute_error(t, p), "rmse": math.sqrt(metrics.mean_squared_error(t, p)), "r2": metrics.r2_score(t, p)})
        continue
    t, p = case["truth"], case["predicted"]
    avg = "binary" if case.get("positive") is not None else "macro"
    kw = {"pos_label": case["positive"]} if avg == "binary" else {}
    r = {"accuracy": metrics.accuracy_score(t, p),
         "precision": metrics.precision_score(t, p, average=avg, zero_division=0, **kw),
         "recall": metrics.recall_score(t, p, average=avg, zero_division=0, **kw),
         "f1": metrics.f1_score(t, p, average=avg, zero_division=0, **kw)}
    if case.get("scores") is not None:
        y = [1 if v == case["positive"] else 0 for v in t]
        r["roc_auc"] = metrics.roc_auc_score(y, case["scores"])
        r["brier"] = metrics.brier_score_loss(y, case["scores"])
        observed, predicted = calibration_curve(y, case["scores"], n_bins=10, strategy="uniform")
        r["calibration"] = [[float(o), float(q)] for o, q in zip(observed, predicted)]
    out.append(r)
print(json.dumps(out))
`

const hasSklearn = async () =>
  (await execa('/usr/bin/python3', ['-c', 'import sklearn'], {reject: false})).exitCode === 0

async function sklearn<T>(cases: unknown[]): Promise<T[]> {
  const {stdout} = await execa('/usr/bin/python3', ['-c', SKLEARN], {input: JSON.stringify(cases)})
  return JSON.parse(stdout) as T[]
}

function close(actual: number | undefined, expected: number, what: string): void {
  assert.ok(actual !== undefined && Math.abs(actual - expected) <= 1e-9, `${what}: ${actual} != sklearn's ${expected}`)
}

interface Expected {
  accuracy?: number
  precision?: number
  recall?: number
  f1?: number
  roc_auc?: number
  brier?: number
  calibration?: [number, number][]
  mae?: number
  rmse?: number
  r2?: number
}

describe('monitor --performance', function () {
  this.timeout(120_000)

  before(async function () {
    if (await hasSklearn()) return
    if (process.env.CI) throw new Error('python3-sklearn is missing (Debian package python3-sklearn)')
    console.log('    skipped: /usr/bin/python3 has no sklearn (apt-get install python3-sklearn)')
    this.skip()
  })

  it('classification (binary with scores, with ties; and several classes) and regression metrics equal scikit-learn', async () => {
    const rng = random(7)
    const binary = Array.from({length: 500}, () => {
      const truth = rng.uniform() < 0.3 ? 'default' : 'repaid'
      // Scores rounded to two places: ties, which ROC AUC must count half.
      const score =
        Math.round(Math.min(1, Math.max(0, (truth === 'default' ? 0.62 : 0.35) + rng.normal() * 0.2)) * 100) / 100
      return {truth, predicted: score >= 0.5 ? 'default' : 'repaid', score}
    })
    const classes = ['cat', 'dog', 'fox']
    const multi = Array.from({length: 300}, () => {
      const truth = rng.pick(classes, [5, 3, 2])
      return {truth, predicted: rng.uniform() < 0.7 ? truth : rng.pick(classes, [1, 1, 1])}
    })
    const truth = Array.from({length: 400}, () => 10 + rng.normal() * 3)
    const predicted = truth.map((t) => t + rng.normal() * 1.5 + 0.3)
    const [b, m, r] = await sklearn<Expected>([
      {
        kind: 'classification',
        truth: binary.map((p) => p.truth),
        predicted: binary.map((p) => p.predicted),
        positive: 'default',
        scores: binary.map((p) => p.score),
      },
      {kind: 'classification', truth: multi.map((p) => p.truth), predicted: multi.map((p) => p.predicted)},
      {kind: 'regression', truth, predicted},
    ])
    const ours = classificationMetrics(binary, 'default')
    for (const name of ['accuracy', 'precision', 'recall', 'f1', 'roc_auc'] as const)
      close(ours[name]?.value, b[name]!, `binary ${name}`)
    close(ours.brier, b.brier!, 'brier')
    assert.deepEqual(
      ours.calibration!.map((bin) => [bin.observed, bin.predicted].map((v) => v.toFixed(12))),
      b.calibration!.map((pair) => pair.map((v) => v.toFixed(12))),
    )
    const acc = ours.accuracy
    assert.ok(acc.ci!.low < acc.value && acc.value < acc.ci!.high)
    const macro = classificationMetrics(multi)
    assert.equal(macro.average, 'macro')
    for (const name of ['accuracy', 'precision', 'recall', 'f1'] as const)
      close(macro[name].value, m[name]!, `macro ${name}`)
    const reg = regressionMetrics(truth, predicted)
    for (const name of ['mae', 'rmse', 'r2'] as const) close(reg[name].value, r[name]!, name)
    assert.ok(reg.mae.ci!.low <= reg.mae.value && reg.mae.value <= reg.mae.ci!.high)
  })

  it("mlops feedback joined by a key column to logged predictions: the CLI reports sklearn's figures, per version, and exits 1 under a gate", async () => {
    const tmp = await tempDir()
    const rng = random(11)
    const now = Date.now()
    const log: string[] = []
    const outcomes: string[] = ['txn,label']
    const pairs: {truth: string; predicted: string; score: number}[] = []
    for (let i = 0; i < 200; i++) {
      const truth = rng.uniform() < 0.4 ? 'default' : 'repaid'
      const score = Math.min(1, Math.max(0, (truth === 'default' ? 0.6 : 0.4) + rng.normal() * 0.25))
      const predicted = score >= 0.5 ? 'default' : 'repaid'
      const version = i % 4 === 0 ? '1.1.0' : '1.0.0'
      log.push(
        JSON.stringify({
          id: `req-${i}`,
          time: new Date(now - (200 - i) * 1000).toISOString(),
          model: {name: 'credit', version},
          route: '/v1/predict',
          status: 200,
          latency_ms: 1,
          inputs: [{txn: `T${i}`, age: 40}],
          outputs: {predictions: [{probability: score, label: predicted}], model: 'credit', version},
        }),
      )
      // Truth arrives for 3 in 4 requests of 1.0.0 (i % 4 = 1, 2, 3 are 1.0.0; 1 in 4 left out).
      if (version === '1.0.0' && i % 4 !== 3) {
        outcomes.push(`T${i},${truth}`)
        pairs.push({truth, predicted, score})
      }
    }
    await mkdir(join(tmp.path, 'logs'))
    await writeFile(join(tmp.path, 'logs', 'requests.jsonl'), log.join('\n') + '\n')
    await writeFile(join(tmp.path, 'outcomes.csv'), outcomes.join('\n') + '\n')
    const config = {
      name: 'credit',
      model: {path: 'model.onnx'},
      serving: {request_log: {path: 'logs/requests.jsonl'}},
      monitor: {performance: {positive: 'default', window: '1m', min_samples: 50, gates: {min_accuracy: 0.5}}},
    }
    await writeFile(join(tmp.path, 'mlops.yaml'), JSON.stringify(config))
    const ingest = ['feedback', '--input', 'outcomes.csv', '--key', 'txn', '--join', 'txn', '--json']
    const first = await mlops(ingest, {cwd: tmp.path})
    assert.equal(first.exitCode, 0, first.stderr)
    assertMatchesSchema(first.json, 'feedback')
    assert.deepEqual(first.json, {
      file: 'logs/requests.jsonl.feedback.jsonl',
      rows: 100,
      accepted: 100,
      duplicates: 0,
      unmatched: 0,
    })
    const feedbackFile = join(tmp.path, 'logs/requests.jsonl.feedback.jsonl')
    assert.equal((await stat(feedbackFile)).mode & 0o777, 0o600, 'the truth is readable by its owner only')
    const again = await mlops(ingest, {cwd: tmp.path})
    assert.equal((again.json as {duplicates: number}).duplicates, 100, 'feedback is idempotent per request id')

    const run = await mlops(['monitor', '--performance', '--since', '1h', '--json', '--html', 'perf.html'], {
      cwd: tmp.path,
    })
    assert.equal(run.exitCode, 0, run.stdout + run.stderr)
    assertMatchesSchema(run.json, 'monitor-performance')
    const result = run.json as {
      versions: {version: string; predictions: number; labeled: number; metrics?: Record<string, {value: number}>}[]
    }
    const [expected] = await sklearn<Expected>([
      {
        kind: 'classification',
        truth: pairs.map((p) => p.truth),
        predicted: pairs.map((p) => p.predicted),
        positive: 'default',
        scores: pairs.map((p) => p.score),
      },
    ])
    const stable = result.versions.find((v) => v.version === '1.0.0')!
    assert.equal(stable.predictions, 150)
    assert.equal(stable.labeled, 100)
    for (const name of ['accuracy', 'precision', 'recall', 'f1', 'roc_auc'] as const)
      close(stable.metrics?.[name]?.value, expected[name]!, name)
    // 200 s of traffic in one-minute windows (aligned to when the command ran): four or five, adding up to the version's.
    const windows = (stable as unknown as {windows: {predictions: number}[]}).windows
    assert.ok(windows.length === 4 || windows.length === 5, `${windows.length} windows`)
    assert.equal(
      windows.reduce((sum, w) => sum + w.predictions, 0),
      150,
    )
    const other = result.versions.find((v) => v.version === '1.1.0')!
    assert.equal(other.labeled, 0)
    assert.match(await readFile(join(tmp.path, 'perf.html'), 'utf8'), /calibration/)

    config.monitor.performance.gates.min_accuracy = 0.99
    await writeFile(join(tmp.path, 'mlops.yaml'), JSON.stringify(config))
    const failing = await mlops(['monitor', '--performance', '--since', '1h'], {cwd: tmp.path})
    assert.equal(failing.exitCode, 1, failing.stdout + failing.stderr)
    assert.match(failing.stdout, /1\.0\.0 fail: accuracy/)
    await tmp.remove()
  })

  it("POST /v1/feedback on a live server: values joined to its regression answers give sklearn's MAE, RMSE and R²; bad items are 400 naming the field", async () => {
    const tmp = await tempDir()
    const path = join(tmp.path, 'requests.jsonl')
    const {server, url} = await start('xgboost_regressor', {
      requestLog: logEverything(path),
    })
    const rng = random(3)
    const truth: number[] = []
    const predicted: number[] = []
    try {
      for (let i = 0; i < 40; i++) {
        const X = [4 + rng.uniform() * 3, 2 + rng.uniform() * 2, 1 + rng.uniform() * 5, rng.uniform() * 2.5]
        const answer = await post(`${url}/v1/predict`, {instances: [{X}]}, {'x-request-id': `r${i}`})
        assert.equal(answer.status, 200, answer.text)
        const value = answer.json.predictions[0].variable as number[] | number
        predicted.push(Array.isArray(value) ? value[0] : value)
        truth.push(predicted[i] + rng.normal() * 0.3)
      }
      const items = truth.map((value, i) => ({request_id: `r${i}`, value}))
      const sent = await post(`${url}/v1/feedback`, {feedback: items})
      assert.deepEqual(sent.json, {accepted: 40, duplicates: 0})
      assert.deepEqual((await post(`${url}/v1/feedback`, items[0])).json, {accepted: 0, duplicates: 1})
      const bad = await post(`${url}/v1/feedback`, {feedback: [{request_id: 'r1', value: 'high'}]})
      assert.equal(bad.status, 400)
      assert.equal(bad.json.error.field, 'feedback[0].value')
    } finally {
      await server.close()
    }
    await writeFile(
      join(tmp.path, 'mlops.yaml'),
      JSON.stringify({
        name: 'xgboost_regressor',
        model: {path: 'm.onnx'},
        serving: {request_log: {path: 'requests.jsonl'}},
      }),
    )
    const run = await mlops(['monitor', '--performance', '--json'], {cwd: tmp.path})
    assert.equal(run.exitCode, 0, run.stdout + run.stderr)
    const result = run.json as {task: string; versions: {metrics: Record<string, {value: number}>}[]}
    assert.equal(result.task, 'regression')
    const [expected] = await sklearn<Expected>([{kind: 'regression', truth, predicted}])
    for (const name of ['mae', 'rmse', 'r2'] as const) {
      const ours = result.versions[0].metrics[name].value
      // The log holds the answers as the server wrote them (float32 printed in full): the same numbers the client read.
      assert.ok(Math.abs(ours - expected[name]!) <= 1e-9, `${name}: ${ours} != ${expected[name]}`)
    }
    await tmp.remove()
  })
})
