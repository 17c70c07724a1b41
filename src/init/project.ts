// `mlops init`: scaffolds a deployment project around an ONNX model, from templates/, without touching files that exist.
import {readFile, stat} from 'node:fs/promises'
import {basename, isAbsolute, join, relative, resolve, sep} from 'node:path'

import {Document, isScalar, isSeq, visit} from 'yaml'

import {ConfigError, UsageError, errorMessage} from '../errors.js'
import {CONFIG_FILE, parseConfig} from '../config/load.js'
import {type LoadedModel, type ModelSignature, formatShape, loadModel} from '../model/signature.js'
import {writeFileAtomically} from '../system/atomic.js'
import {installSource} from '../system/install-source.js'
import {goldenJsonl, seedGoldenCases} from './golden.js'
import {type Sample, randomFeeds, readSamples, resolveShapes} from './inputs.js'
import {type ProbeFindings, probeModel} from '../model/probe.js'
import {type OrtTensor, tensorToJson} from '../model/tensor.js'
import {renderTemplateFile} from './render.js'
import {
  type Inferred,
  type ModelKnowledge,
  type ProbedShapes,
  type SuggestedPipeline,
  type TemplateKind,
  detectTemplate,
  inferPipeline,
  isTabular,
} from './suggest.js'

export interface InitOptions {
  /** The project directory; created when missing. */
  dir: string
  /** The ONNX model; copied into model/ unless it already lies inside `dir`. */
  model: string
  /** Artifact and image name; default: the directory's name. */
  name?: string
  /** Default: chosen from the model's signature. */
  template?: TemplateKind
  /** Full shapes (batch included) for inputs with dynamic dimensions, by input name. */
  shapes?: Record<string, number[]>
  /** A file of real inputs to seed the golden cases with, instead of generated ones. */
  sample?: string
}

export interface InitResult {
  /** Absolute path of the project directory. */
  dir: string
  name: string
  template: TemplateKind
  signature: ModelSignature
  /** Files written by this run, relative to `dir`. */
  created: string[]
  /** Files that existed and were left alone. */
  skipped: string[]
  warnings: string[]
  /** Golden cases written by this run. */
  golden: number
  /** Why golden.jsonl has no case: "mlops test" then has no regression baseline. */
  noGolden?: string
  /** What init decided from running the model, one entry per output and per feature. */
  inferred: Inferred[]
}

/** Same rule as `name` in schemas/config/mlops.schema.json: the name becomes an image and artifact name. */
const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/

/** Why a project name is refused, or undefined when it is fine. */
export function projectNameProblem(name: string): string | undefined {
  return NAME_PATTERN.test(name)
    ? undefined
    : `"${name}" is not a valid project name: lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters`
}
const GOLDEN_FILE = 'golden.jsonl'
/** Few generated cases for large inputs (images): each one adds the whole input tensor to golden.jsonl. */
const GENERATED_CASES = {small: 3, large: 1, largeElements: 65_536}

/** What the directory's name becomes as a project name: lowercase, other characters as '-'. */
export function defaultProjectName(dir: string, model: string): string {
  for (const candidate of [basename(resolve(dir)), basename(model).replace(/\.(onnx|ort)$/i, '')]) {
    const name = candidate
      .toLowerCase()
      .replaceAll(/[^a-z0-9._-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '')
      .slice(0, 63)
    if (NAME_PATTERN.test(name)) return name
  }
  return 'model'
}

function toPosix(path: string): string {
  return path.split(sep).join('/')
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false
      throw error
    },
  )
}

/** Why a model path cannot be used, or undefined when it is a file. */
export async function modelFileProblem(path: string): Promise<string | undefined> {
  const info = await stat(path).catch(() => undefined)
  if (!info) return `The model file ${path} does not exist`
  if (!info.isFile()) return `${path} is a directory, not an ONNX file`
  return undefined
}

async function checkModelFile(path: string): Promise<void> {
  const problem = await modelFileProblem(path)
  if (problem)
    throw new UsageError('MODEL_NOT_FOUND', problem, {
      hint: 'Pass the trained model itself with --model PATH/TO/model.onnx (or .ort).',
    })
}

function describeSignature(signature: ModelSignature): string {
  const inputs = signature.inputs.map((i) => `${i.name} ${i.dtype}${formatShape(i.shape)}`).join(', ')
  const outputs = signature.outputs
    .map((o) => (o.isTensor ? `${o.name} ${o.dtype}${formatShape(o.shape ?? [])}` : `${o.name} (map)`))
    .join(', ')
  return `${inputs} -> ${outputs}`
}

/** `pipeline:` as YAML, with short lists and flat mappings on one line so a feature reads as one line. */
function pipelineYaml(pipeline: SuggestedPipeline): string {
  const doc = new Document({pipeline})
  visit(doc, {
    Seq(_key, node) {
      if (node.items.every((item) => isScalar(item))) node.flow = true
    },
    Map(_key, node) {
      if (
        node.items.every(
          (pair) => isScalar(pair.value) || (isSeq(pair.value) && pair.value.items.every((item) => isScalar(item))),
        )
      )
        node.flow = true
    },
  })
  return doc.toString({lineWidth: 120, flowCollectionPadding: false}).trimEnd()
}

function yamlScalar(value: string): string {
  return new Document(value).toString().trimEnd()
}

interface GoldenPlan {
  /** The content to write, or undefined to leave an existing file alone. */
  content?: string
  cases: number
  /** What running the model taught: outputs of the first run, columns that take a missing value, sizes that ran. */
  knowledge: ModelKnowledge & ProbedShapes
  /** Why golden.jsonl holds no case, when it holds none. */
  empty?: string
}

/** Generated inputs that the model runs on: the default shapes, or what probing found when those fail. */
async function generatedSamples(
  model: LoadedModel,
  kind: TemplateKind,
  options: InitOptions,
  warnings: string[],
): Promise<{samples: Sample[]; knowledge: ModelKnowledge & ProbedShapes; error?: string}> {
  const resolved = resolveShapes(model.signature, kind, options.shapes)
  const findings = await probe(model, resolved.shapes, Object.keys(options.shapes ?? {}))
  if (!findings.working) return {samples: [], knowledge: {}, error: findings.error}
  const {shapes, intMax} = findings.working
  for (const name of resolved.defaulted)
    warnings.push(
      `input "${name}" has dynamic dimensions: the generated golden inputs use shape [${shapes[name].join(',')}]. Pass --shape ${name}=${shapes[name].join(',')} with the sizes your data has.`,
    )
  const elements = Object.values(shapes).reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1), 0)
  const count = elements > GENERATED_CASES.largeElements ? GENERATED_CASES.large : GENERATED_CASES.small
  const samples = Array.from({length: count}, (_, i) => ({
    name: `generated input ${i + 1} (seed ${i + 1})`,
    feeds: randomFeeds(model.signature, shapes, i + 1, intMax),
  }))
  return {samples, knowledge: knowledgeFrom(findings)}
}

/** What real inputs teach: their answers, and which columns take a missing value (their shapes stay as given). */
async function sampleKnowledge(model: LoadedModel, sample: Sample | undefined): Promise<ModelKnowledge & ProbedShapes> {
  if (!sample) return {}
  const shapes = Object.fromEntries(Object.entries(sample.feeds).map(([k, t]) => [k, [...t.dims]]))
  const findings = await probe(model, shapes, Object.keys(shapes), sample.feeds)
  return knowledgeFrom(findings)
}

/** Probes with seeded generated inputs; `fixed` inputs keep their shapes, `base` feeds are tried first. */
function probe(
  model: LoadedModel,
  shapes: Record<string, number[]>,
  fixed: string[],
  base?: Record<string, OrtTensor>,
): Promise<ProbeFindings> {
  const makeFeeds = (s: Record<string, number[]>, intMax: number) => randomFeeds(model.signature, s, 1, intMax)
  return probeModel(model, {shapes, fixed: new Set(fixed), makeFeeds, base})
}

function knowledgeFrom(findings: ProbeFindings): ModelKnowledge & ProbedShapes {
  if (!findings.working) return {}
  const observed = Object.fromEntries(Object.entries(findings.outputs).map(([k, t]) => [k, tensorToJson(t)]))
  return {observed, missingOk: findings.missingOk, axes: findings.axes, shapes: findings.working.shapes}
}

/**
 * Seeds golden.jsonl from --sample or from generated inputs. An existing non-empty golden.jsonl is kept; an empty one
 * (left by an earlier init whose model failed on generated inputs) is filled.
 */
async function planGolden(
  model: LoadedModel,
  kind: TemplateKind,
  options: InitOptions,
  goldenPath: string,
  warnings: string[],
): Promise<GoldenPlan> {
  const existing = await readFile(goldenPath, 'utf8').catch(() => undefined)
  const keep = existing?.trim() !== undefined && existing.trim() !== ''
  if (keep && options.sample)
    warnings.push(
      `${GOLDEN_FILE} exists, so --sample ${options.sample} was not used. Delete ${GOLDEN_FILE} and run "mlops init" again to reseed it.`,
    )
  const emptyFile = existing === undefined ? '' : undefined
  const generated = options.sample ? undefined : await generatedSamples(model, kind, options, warnings)
  if (keep) return {cases: 0, knowledge: generated?.knowledge ?? {}}
  const samples = generated ? generated.samples : await readSamples(options.sample!, model.signature)
  const knowledge = generated?.knowledge ?? (await sampleKnowledge(model, samples[0]))
  if (generated?.error !== undefined) {
    const reason = generated.error.slice(0, 300)
    return {
      content: emptyFile,
      cases: 0,
      knowledge: {},
      empty: `the model fails on every generated input tried (${reason}). Run "mlops init --sample FILE" with real inputs to seed it`,
    }
  }
  try {
    const cases = await seedGoldenCases(model, samples)
    const observed = knowledge.observed ?? cases[0]?.expected.outputs ?? {}
    return {content: goldenJsonl(cases), cases: cases.length, knowledge: {...knowledge, observed}}
  } catch (error) {
    const reason = errorMessage(error).split('\n')[0].slice(0, 300)
    if (options.sample)
      throw new UsageError('INIT_SAMPLE_FAILED', `The model fails on the inputs in ${options.sample}: ${reason}`, {
        hint: 'Check the sample inputs against the model signature, then run "mlops init" again.',
      })
    return {
      content: emptyFile,
      cases: 0,
      knowledge,
      empty: `the model fails on generated inputs (${reason}). Run "mlops init --sample FILE" with real inputs to seed it`,
    }
  }
}

interface PlannedFile {
  path: string
  content?: string | Buffer
  /** Written over an existing file: only an empty golden.jsonl. */
  replace?: boolean
}

/** The files every project gets besides mlops.yaml: template path → project path. */
const PROJECT_FILES: [string, string][] = [
  ['project/gitignore', '.gitignore'],
  ['project/dockerignore', '.dockerignore'],
  ['project/Dockerfile', 'Dockerfile'],
  ['project/github/workflows/mlops.yml', '.github/workflows/mlops.yml'],
  ['project/gitlab-ci.yml', '.gitlab-ci.yml'],
]

export async function initProject(options: InitOptions): Promise<InitResult> {
  const dir = resolve(options.dir)
  if ((await stat(dir).catch(() => undefined))?.isDirectory() === false)
    throw new UsageError('INIT_DIR_INVALID', `${dir} is a file, not a directory`, {
      hint: 'Pass a new or existing folder as DIR: mlops init DIR --model PATH/TO/model.onnx',
    })
  const source = resolve(options.model)
  await checkModelFile(source)
  const name = options.name ?? defaultProjectName(dir, source)
  const problem = projectNameProblem(name)
  if (problem)
    throw new UsageError('INIT_NAME_INVALID', `--name ${problem}`, {
      hint: `Pass --name ${defaultProjectName(name, 'model')}`,
    })

  const warnings: string[] = []
  const inside = relative(dir, source)
  const modelPath =
    inside && inside.split(sep)[0] !== '..' && !isAbsolute(inside) ? toPosix(inside) : `model/${basename(source)}`
  const target = join(dir, modelPath)
  const copy = target !== source && !(await exists(target))
  if (!copy && target !== source && !(await readFile(target)).equals(await readFile(source))) {
    warnings.push(
      `${modelPath} exists and differs from ${options.model}: init uses the project's copy and leaves it alone. Replace it yourself to switch models.`,
    )
  }

  // The project's model, once it is there, is what mlops.yaml points at: read the signature and seed the golden cases from it.
  const model = await loadModel(copy ? source : target)
  let golden: GoldenPlan
  let kind: TemplateKind
  try {
    warnings.push(...model.warnings)
    kind = options.template ?? detectTemplate(model.signature)
    if (kind === 'tabular' && !isTabular(model.signature))
      warnings.push('--template tabular: the model inputs are not columns ([N,k] or [N]), so its features are tensors.')
    golden = await planGolden(model, kind, options, join(dir, GOLDEN_FILE), warnings)
  } finally {
    await model.session.release().catch(() => undefined)
  }

  const vars = {
    name,
    template: kind,
    modelPath: yamlScalar(modelPath),
    signature: describeSignature(model.signature),
    ...(await installSource()),
  }
  const {pipeline: suggested, inferred} = inferPipeline(model.signature, kind, golden.knowledge)
  const pipeline = pipelineYaml(suggested)
  const config = await renderTemplateFile(`mlops/${kind}.yaml`, {...vars, pipeline})
  try {
    parseConfig(config, CONFIG_FILE)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    warnings.push(
      `The generated ${CONFIG_FILE} does not validate yet: ${error.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}. Fix those fields before "mlops package".`,
    )
  }

  // A file without content is one that exists and is kept; a model already inside the project is not listed.
  const files: PlannedFile[] = [{path: CONFIG_FILE, content: config}]
  if (target !== source) files.push({path: modelPath, content: copy ? await readFile(source) : undefined})
  files.push({path: GOLDEN_FILE, content: golden.content, replace: golden.cases > 0})
  for (const [from, to] of PROJECT_FILES) files.push({path: to, content: await renderTemplateFile(from, vars)})

  const created: string[] = []
  const skipped: string[] = []
  for (const file of files) {
    const path = join(dir, file.path)
    if (file.content === undefined || (!file.replace && (await exists(path)))) {
      skipped.push(file.path)
      continue
    }
    await writeFileAtomically(path, file.content)
    created.push(file.path)
  }
  return {
    dir,
    name,
    template: kind,
    signature: model.signature,
    created,
    skipped,
    warnings,
    golden: golden.cases,
    ...(golden.empty ? {noGolden: golden.empty} : {}),
    inferred,
  }
}
