// The bundled credit-risk example: draws the data, fits the preprocessing, trains the model and renders every file.
import {Document, isCollection} from 'yaml'

import type {GoldenCase} from '../../src/checks/golden.types.js'
import {type Applicant, LIVE_SHIFT, drawApplicants} from './applicants.js'
import {type LogisticModel, accuracy, predictProbabilities, rocAuc, toFloat32, trainLogistic} from './logistic.js'
import {logisticRegressionOnnx} from './onnx.js'
import {
  CATEGORIES,
  COLUMNS,
  FEATURE_ORDER,
  type FittedPreprocessing,
  encodeApplicant,
  encodeApplicants,
  fitPreprocessing,
} from './preprocess.js'
import {Random} from './random.js'

export interface ExampleOptions {
  seed: number
  epochs: number
}

export const DEFAULT_OPTIONS: ExampleOptions = {seed: 42, epochs: 40}

export const SIZES = {training: 5_000, holdout: 1_000, applicants: 1_000, shifted: 2_000}
export const THRESHOLD = 0.5
export const LABELS = ['repaid', 'default'] as const

/** Independent random streams, so that changing one file's size or the epochs leaves the other files' rows alone. */
const STREAM = {labelled: 0, applicants: 1, shifted: 2, training: 3}

export interface ExampleMetrics {
  holdoutAuc: number
  holdoutAccuracy: number
  trainingAuc: number
  defaultRate: number
}

export interface Example {
  /** File contents by path relative to the example folder. */
  files: Map<string, string | Uint8Array>
  fitted: FittedPreprocessing
  model: LogisticModel
  metrics: ExampleMetrics
}

export const CSV_COLUMNS = [
  'age',
  'income',
  'debt_ratio',
  'credit_history_months',
  'region',
  'employment',
  'has_prior_default',
] as const

/** Plain CSV: no value contains a comma or a quote, a missing income is an empty cell. */
function toCsv(applicants: readonly Applicant[], labels?: Uint8Array): string {
  const header = labels ? [...CSV_COLUMNS, 'default'] : [...CSV_COLUMNS]
  const lines = applicants.map((a, i) => {
    const cells = CSV_COLUMNS.map((c) => (a[c] === null ? '' : String(a[c])))
    if (labels) cells.push(String(labels[i]))
    return cells.join(',')
  })
  return [header.join(','), ...lines].join('\n') + '\n'
}

/** Hand-written cases for the behaviour a reviewer looks for first; the rest of the golden set is held-out rows. */
const NAMED_CASES: {name: string; applicant: Applicant}[] = [
  {
    name: 'low risk: established employed applicant',
    applicant: {
      age: 55,
      income: 85_000,
      debt_ratio: 0.15,
      credit_history_months: 360,
      region: 'north',
      employment: 'employed',
      has_prior_default: false,
    },
  },
  {
    name: 'high risk: unemployed, heavy debt, prior default',
    applicant: {
      age: 29,
      income: 18_000,
      debt_ratio: 0.9,
      credit_history_months: 36,
      region: 'south',
      employment: 'unemployed',
      has_prior_default: true,
    },
  },
  {
    name: 'missing income is imputed with the training median',
    applicant: {
      age: 41,
      income: null,
      debt_ratio: 0.31,
      credit_history_months: 84,
      region: 'east',
      employment: 'employed',
      has_prior_default: false,
    },
  },
  {
    name: 'student with a short credit history',
    applicant: {
      age: 21,
      income: 9_000,
      debt_ratio: 0.2,
      credit_history_months: 12,
      region: 'west',
      employment: 'student',
      has_prior_default: false,
    },
  },
  {
    name: 'self-employed with debt above income (debt_ratio > 1)',
    applicant: {
      age: 47,
      income: 61_000,
      debt_ratio: 1.15,
      credit_history_months: 150,
      region: 'north',
      employment: 'self_employed',
      has_prior_default: false,
    },
  },
  {
    name: 'no credit history at all',
    applicant: {
      age: 19,
      income: 24_000,
      debt_ratio: 0.05,
      credit_history_months: 0,
      region: 'east',
      employment: 'employed',
      has_prior_default: false,
    },
  },
]
const HOLDOUT_CASES = 13
/** Golden probabilities stay this far from the threshold, so float32 serving cannot flip a label. */
const MIN_MARGIN = 2e-3

function goldenCase(name: string, applicant: Applicant, probability: number): GoldenCase {
  if (Math.abs(probability - THRESHOLD) < MIN_MARGIN)
    throw new Error(`golden case "${name}" has probability ${probability}, too close to the threshold ${THRESHOLD}`)
  const record = Object.fromEntries(CSV_COLUMNS.map((c) => [c, applicant[c]]))
  return {
    name,
    records: [record],
    expected: {
      predictions: [{probability: Number(probability.toPrecision(9)), label: LABELS[probability >= THRESHOLD ? 1 : 0]}],
    },
  }
}

function goldenCases(model: LogisticModel, fitted: FittedPreprocessing, holdout: readonly Applicant[]): GoldenCase[] {
  const probability = (a: Applicant) => predictProbabilities(model, encodeApplicant(a, fitted))[0]
  const cases = NAMED_CASES.map(({name, applicant}) => goldenCase(name, applicant, probability(applicant)))
  const scored = holdout.map((applicant, row) => ({applicant, row, p: probability(applicant)}))
  const clear = scored.filter((s) => Math.abs(s.p - THRESHOLD) >= 0.05).slice(0, HOLDOUT_CASES)
  for (const s of clear) cases.push(goldenCase(`held-out applicant #${s.row}`, s.applicant, s.p))
  const nearest = scored
    .filter((s) => Math.abs(s.p - THRESHOLD) >= MIN_MARGIN)
    .reduce((a, b) => (Math.abs(b.p - THRESHOLD) < Math.abs(a.p - THRESHOLD) ? b : a))
  cases.push(goldenCase(`held-out applicant #${nearest.row}, near the threshold`, nearest.applicant, nearest.p))
  return cases
}

const FEATURE_DESCRIPTIONS: Record<(typeof FEATURE_ORDER)[number], string> = {
  age: 'Age in years.',
  income: 'Yearly income; may be missing.',
  debt_ratio: 'Monthly debt payments over monthly income; can exceed 1.',
  credit_history_months: 'Months since the first credit account.',
  region: 'Sales region.',
  employment: 'Employment status.',
  has_prior_default: 'Has defaulted on a loan before.',
}

/** mlops.yaml with the fitted statistics written out, so packaging and serving need no data. */
function projectConfig(fitted: FittedPreprocessing, options: ExampleOptions): string {
  const standardize = (feature: keyof FittedPreprocessing['scale']) => ({standardize: {...fitted.scale[feature]}})
  const features = FEATURE_ORDER.map((name) => {
    const description = FEATURE_DESCRIPTIONS[name]
    switch (name) {
      case 'income':
        return {
          name,
          type: 'number',
          description,
          required: false,
          impute: {value: fitted.incomeMedian},
          transform: ['log1p', standardize(name)],
        }
      case 'credit_history_months':
        return {name, type: 'integer', description, required: true, transform: standardize(name)}
      case 'age':
      case 'debt_ratio':
        return {name, type: 'number', description, required: true, transform: standardize(name)}
      case 'region':
      case 'employment':
        return {
          name,
          type: 'category',
          description,
          required: true,
          encode: {onehot: {categories: [...CATEGORIES[name]], unknown: 'ignore'}},
        }
      case 'has_prior_default':
        return {name, type: 'boolean', description, required: true}
    }
  })
  const config = {
    name: 'credit-risk',
    version: '1.0.0',
    description: 'Probability that a credit applicant defaults: a logistic regression trained on synthetic applicants.',
    model: {path: 'model/model.onnx'},
    data: {reference: 'data/reference.csv', golden: 'golden.jsonl'},
    pipeline: {
      features,
      inputs: [{input: 'features', features: [...FEATURE_ORDER]}],
      outputs: [{output: 'probability', activation: 'none', threshold: THRESHOLD, labels: [...LABELS]}],
    },
    serving: {request_log: {path: '.mlops/logs/requests.jsonl'}},
    checks: {
      load: {
        mode: 'open',
        rate: 100,
        concurrency: 32,
        duration: '10s',
        warmup: '2s',
        requests: 'reference',
        min_throughput_ratio: 0.9,
      },
      latency: {gates: ['p50 <= 50ms', 'p99 <= 250ms']},
      robustness: {seed: 1, cases: 120, timeout_ms: 5000},
      regression: {
        tolerances: {probability: {rtol: 1e-4, atol: 1e-5}},
        gates: {min_agreement: 0.99, max_flip_rate: 0.01, max_abs_diff: 0.05, max_mean_abs_diff: 0.01},
      },
    },
    deploy: {
      steps: [10, 50],
      analysis: {
        interval_seconds: 1,
        min_requests: 50,
        bake_seconds: 3,
        deadline_seconds: 120,
        gates: {latency: {max_p99_ratio: 3, slack_ms: 150}, agreement: {min_rate: 0.8, tolerance: 0.1}},
      },
    },
  }
  const doc = new Document(config)
  doc.commentBefore = ` Written by scripts/train-example.ts --seed ${options.seed} --epochs ${options.epochs}; the statistics were fitted on data/reference.csv.`
  const flow = (path: (string | number)[]) => {
    const node = doc.getIn(path, true)
    if (isCollection(node)) node.flow = true
  }
  features.forEach((_, i) => ['impute', 'transform', 'encode'].forEach((key) => flow(['pipeline', 'features', i, key])))
  flow(['pipeline', 'inputs', 0, 'features'])
  flow(['pipeline', 'outputs', 0, 'labels'])
  flow(['deploy', 'steps'])
  for (const key of ['load', 'robustness']) flow(['checks', key])
  flow(['checks', 'latency', 'gates'])
  flow(['checks', 'regression', 'tolerances', 'probability'])
  flow(['checks', 'regression', 'gates'])
  for (const gate of ['latency', 'agreement']) flow(['deploy', 'analysis', 'gates', gate])
  const latency = doc.getIn(['checks', 'latency'], true)
  if (latency && typeof latency === 'object')
    (latency as {commentBefore?: string}).commentBefore =
      ' The model answers in about 1 ms: gates far above it fail a slow model, not a busy laptop (another build, a video call).'
  const analysis = doc.getIn(['deploy', 'analysis'], true)
  if (analysis && typeof analysis === 'object')
    (analysis as {commentBefore?: string}).commentBefore =
      ' Short steps so the demo finishes in seconds; production rollouts bake for minutes. The latency slack is wide for\n the same reason as the checks: both versions run on one busy machine, and a p99 over a few dozen requests is noisy.'
  return doc.toString({lineWidth: 0, flowCollectionPadding: false})
}

export function buildExample(options: ExampleOptions = DEFAULT_OPTIONS): Example {
  const labelled = drawApplicants(new Random(options.seed, STREAM.labelled), SIZES.training + SIZES.holdout)
  const training = labelled.applicants.slice(0, SIZES.training)
  const trainingLabels = labelled.labels.slice(0, SIZES.training)
  const holdout = labelled.applicants.slice(SIZES.training)
  const holdoutLabels = labelled.labels.slice(SIZES.training)

  const fitted = fitPreprocessing(training)
  const x = encodeApplicants(training, fitted)
  const trained = trainLogistic(x, trainingLabels, COLUMNS.length, {
    epochs: options.epochs,
    learningRate: 0.1,
    batchSize: 64,
    l2: 1e-4,
    random: new Random(options.seed, STREAM.training),
  })
  const model = toFloat32(trained)

  const holdoutScores = predictProbabilities(model, encodeApplicants(holdout, fitted))
  const metrics: ExampleMetrics = {
    holdoutAuc: rocAuc(holdoutScores, holdoutLabels),
    holdoutAccuracy: accuracy(holdoutScores, holdoutLabels, THRESHOLD),
    trainingAuc: rocAuc(predictProbabilities(model, x), trainingLabels),
    defaultRate: trainingLabels.reduce((a, b) => a + b, 0) / trainingLabels.length,
  }

  const applicants = drawApplicants(new Random(options.seed, STREAM.applicants), SIZES.applicants).applicants
  const shifted = drawApplicants(new Random(options.seed, STREAM.shifted), SIZES.shifted, LIVE_SHIFT).applicants
  const onnx = logisticRegressionOnnx(model, {
    input: 'features',
    output: 'probability',
    columns: COLUMNS,
    docString: `Probability of default for credit applicants; input columns: ${COLUMNS.join(', ')}.`,
  })

  const files = new Map<string, string | Uint8Array>([
    ['mlops.yaml', projectConfig(fitted, options)],
    ['model/model.onnx', onnx],
    ['data/reference.csv', toCsv(training, trainingLabels)],
    ['data/current-shifted.csv', toCsv(shifted)],
    ['data/applicants.csv', toCsv(applicants)],
    [
      'golden.jsonl',
      goldenCases(model, fitted, holdout)
        .map((c) => JSON.stringify(c))
        .join('\n') + '\n',
    ],
  ])
  return {files, fitted, model, metrics}
}
