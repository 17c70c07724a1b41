// init then package for every shared model, through the built CLI; refusals, determinism and tamper detection.
import assert from 'node:assert/strict'
import {cpSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {ELEM, futureOpsetModel, identityModel, int4OutputModel, sequenceInputModel} from '../support/onnx-fixtures.js'
import {MODELS_DIR, exampleProject, mlops, tempDir} from '../support/cli.js'
import {assertMatchesSchema} from '../support/schema.js'

interface PackageJson {
  name: string
  version: string
  digest: string
  path: string
  golden: {total: number; passed: number; failed: number}
  warnings: string[]
}

const models = readdirSync(MODELS_DIR)
  .filter((f) => f.endsWith('.onnx'))
  .map((f) => f.replace(/\.onnx$/, ''))
// Generated inputs cannot drive these models (silero's sample rate must be 8000 or 16000): seed from the real samples.
const NEEDS_SAMPLE = new Set(['silero_vad_v5'])

describe('init then package, every shared model (e2e)', function () {
  this.timeout(180_000)
  let tmp: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    tmp = await tempDir()
  })
  after(async () => tmp.remove())

  for (const id of models) {
    it(`${id}: init, package with passing golden cases, verify`, async () => {
      const dir = join(tmp.path, id)
      const sample = NEEDS_SAMPLE.has(id) ? ['--sample', join(MODELS_DIR, `${id}.json`)] : []
      const init = await mlops([
        'init',
        dir,
        '--model',
        join(MODELS_DIR, `${id}.onnx`),
        '--name',
        id.replaceAll('_', '-'),
        '--yes',
        '--json',
        ...sample,
      ])
      assert.equal(init.exitCode, 0, init.stderr + init.stdout)

      const packaged = await mlops(['package', '--version', '1.0.0', '--json', '--dir', dir])
      assert.equal(packaged.exitCode, 0, packaged.stderr + packaged.stdout)
      assertMatchesSchema(packaged.json, 'package')
      const result = packaged.json as PackageJson
      assert.equal(result.version, '1.0.0')
      assert.ok(result.golden.total > 0, 'golden cases were run')
      assert.equal(result.golden.failed, 0)
      if (readFileSync(join(MODELS_DIR, `${id}.json`), 'utf8').includes('"non_tensor_outputs": ["')) {
        assert.ok(
          result.warnings.some((w) => /zipmap/i.test(w)),
          `a ZipMap warning for ${id}: ${result.warnings.join('; ')}`,
        )
      }

      const verify = await mlops(['artifacts', 'verify', '1.0.0', '--json', '--dir', dir])
      assert.equal(verify.exitCode, 0, verify.stdout)
    })
  }
})

describe('package: determinism, versions and tampering (e2e)', function () {
  this.timeout(120_000)
  let tmp: Awaited<ReturnType<typeof tempDir>>
  let project: string
  before(async () => {
    tmp = await tempDir()
    project = join(tmp.path, 'a', 'xgb')
    const init = await mlops([
      'init',
      project,
      '--model',
      join(MODELS_DIR, 'xgboost_regressor.onnx'),
      '--yes',
      '--json',
    ])
    assert.equal(init.exitCode, 0, init.stderr)
  })
  after(async () => tmp.remove())

  it('gives the same digest for the same inputs in another directory', async () => {
    const copy = join(tmp.path, 'b', 'elsewhere')
    cpSync(project, copy, {recursive: true})
    const first = await mlops(['package', '--version', '2.0.0', '--json', '--dir', project])
    const second = await mlops(['package', '--version', '2.0.0', '--json', '--dir', copy])
    assert.equal(first.exitCode, 0, first.stderr)
    assert.equal(second.exitCode, 0, second.stderr)
    assert.match((first.json as PackageJson).digest, /^sha256:[0-9a-f]{64}$/)
    assert.equal((first.json as PackageJson).digest, (second.json as PackageJson).digest)
  })

  it('bumps from the newest stored version and refuses the same version with other content', async () => {
    const bumped = await mlops(['package', '--bump', 'minor', '--json', '--dir', project])
    assert.equal(bumped.exitCode, 0, bumped.stderr)
    assert.equal((bumped.json as PackageJson).version, '2.1.0')
    const golden = join(project, 'golden.jsonl')
    writeFileSync(golden, readFileSync(golden, 'utf8').split('\n').slice(0, 1).join('\n') + '\n')
    const again = await mlops(['package', '--version', '2.1.0', '--json', '--dir', project])
    assert.equal(again.exitCode, 2, again.stdout)
    assert.equal((again.json as {error: {code: string}}).error.code, 'VERSION_EXISTS')
    assertMatchesSchema(again.json, 'error')
  })

  it('says loudly, last and once, when the project has no golden cases', async () => {
    const copy = join(tmp.path, 'no-golden')
    cpSync(project, copy, {recursive: true})
    writeFileSync(join(copy, 'golden.jsonl'), '')
    const human = await mlops(['package', '--version', '3.0.0', '--dir', copy])
    assert.equal(human.exitCode, 0, human.stderr)
    assert.match(
      human.stderr,
      /NO GOLDEN CASES: xgb@3\.0\.0 holds no golden cases, so "mlops test" has no regression baseline/,
    )
    assert.match(human.stderr.trimEnd().split('\n').at(-1)!, /Add cases to the file data\.golden names/)
    assert.equal(human.stderr.match(/no golden cases/gi)?.length, 2, human.stderr)
    const json = await mlops(['package', '--version', '3.0.0', '--json', '--dir', copy])
    assert.equal((json.json as PackageJson).golden.total, 0)
    assert.ok((json.json as PackageJson).warnings.some((w) => w.startsWith('no golden cases')))
  })

  it('refuses a version that is not semver with exit code 2', async () => {
    const result = await mlops(['package', '--version', 'one', '--dir', project])
    assert.equal(result.exitCode, 2)
    assert.match(result.stderr, /--version one is not a semantic version/)
  })

  it('names the file when a byte of the stored archive flips', async () => {
    const list = await mlops(['artifacts', 'list', '--json', '--dir', project])
    const record = (list.json as {artifacts: {version: string; path: string}[]}).artifacts.find(
      (a) => a.version === '2.0.0',
    )!
    const bytes = readFileSync(record.path)
    // The model's tar header: its name starts a 512-byte block (the manifest, earlier, names it too).
    let modelAt = bytes.indexOf(Buffer.from('model/xgboost_regressor.onnx\0'))
    while (modelAt % 512 !== 0) modelAt = bytes.indexOf(Buffer.from('model/xgboost_regressor.onnx\0'), modelAt + 1)
    assert.ok(modelAt > 0)
    bytes[modelAt + 512 + 100] ^= 0xff // a byte inside the model's data, one block after its header
    writeFileSync(record.path, bytes)
    const verify = await mlops(['artifacts', 'verify', '2.0.0', '--dir', project])
    assert.equal(verify.exitCode, 1)
    assert.match(verify.stderr, /model\/xgboost_regressor\.onnx/)
    const show = await mlops(['artifacts', 'show', '2.0.0', '--dir', project])
    assert.equal(show.exitCode, 1, 'a tampered artifact is not opened')
  })
})

describe('package: versions only go forward (e2e)', function () {
  this.timeout(120_000)
  let tmp: Awaited<ReturnType<typeof tempDir>>

  before(async () => (tmp = await tempDir()))
  after(async () => tmp.remove())

  it('after --bump, a plain package is the newest version again or the next one, never mlops.yaml’s older one', async () => {
    const project = join(tmp.path, 'xgb')
    const init = await mlops(['init', project, '--model', join(MODELS_DIR, 'xgboost_regressor.onnx'), '--yes'])
    assert.equal(init.exitCode, 0, init.stderr)
    const bumped = await mlops(['package', '--bump', 'minor', '--json', '--dir', project])
    assert.equal((bumped.json as PackageJson).version, '0.2.0', bumped.stderr)

    const same = await mlops(['package', '--json', '--dir', project])
    assert.equal(same.exitCode, 0, same.stderr)
    assert.deepEqual(
      [(same.json as PackageJson).version, (same.json as PackageJson & {created: boolean}).created],
      ['0.2.0', false],
    )

    const golden = join(project, 'golden.jsonl')
    writeFileSync(golden, readFileSync(golden, 'utf8').split('\n').slice(0, 1).join('\n') + '\n')
    const changed = await mlops(['package', '--json', '--dir', project])
    assert.equal(changed.exitCode, 0, changed.stderr)
    const result = changed.json as PackageJson & {warnings: string[]}
    assert.equal(result.version, '0.2.1')
    assert.ok(
      result.warnings.includes(
        'mlops.yaml says version 0.1.0, older than the newest stored 0.2.0: packaged as 0.2.1, the next version. Set "version: 0.2.1" in mlops.yaml, or pass --bump or --version.',
      ),
      result.warnings.join('\n'),
    )
    const list = await mlops(['artifacts', 'list', '--json', '--dir', project])
    const versions = (list.json as {artifacts: {version: string}[]}).artifacts.map((a) => a.version)
    assert.deepEqual(versions.sort(), ['0.2.0', '0.2.1'])
  })
})

describe('package: models Node cannot serve are refused (e2e)', function () {
  this.timeout(60_000)
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['a bfloat16 tensor', () => identityModel(ELEM.BFLOAT16), /bfloat16/],
    ['a float8 tensor', () => identityModel(ELEM.FLOAT8E4M3FN), /float8/],
    ['an int4 output', int4OutputModel, /int4/],
    ['a sequence input', sequenceInputModel, /sequence/],
    ['an opset newer than onnxruntime supports', futureOpsetModel, /opset/],
    ['bytes that are not ONNX', () => Buffer.from('this is not a model'), /not a readable ONNX model|could not load/],
  ]
  for (const [what, make, message] of cases) {
    it(`refuses ${what} with a clear message`, async () => {
      const tmp = await tempDir()
      try {
        writeFileSync(join(tmp.path, 'mlops.yaml'), 'name: fixture\nversion: 1.0.0\nmodel:\n  path: model.onnx\n')
        writeFileSync(join(tmp.path, 'model.onnx'), make())
        const result = await mlops(['package', '--json', '--dir', tmp.path])
        assert.equal(result.exitCode, 1, result.stdout + result.stderr)
        const error = (result.json as {error: {code: string; message: string; hint: string}}).error
        assert.equal(error.code, 'MODEL_UNSUPPORTED')
        assert.match(error.message, message)
        assert.ok(error.hint.length > 0)
        assert.deepEqual(
          readdirSync(tmp.path).filter((f) => f === '.mlops'),
          [],
          'nothing was stored',
        )
      } finally {
        await tmp.remove()
      }
    })
  }

  it('names the field of a config error and exits 2', async () => {
    const tmp = await tempDir()
    try {
      writeFileSync(join(tmp.path, 'mlops.yaml'), 'name: fixture\nmodel:\n  path: model.onnx\n  threads: lots\n')
      const result = await mlops(['package', '--version', '1.0.0', '--dir', tmp.path])
      assert.equal(result.exitCode, 2)
      assert.match(result.stderr, /model\.threads: must be integer/)
    } finally {
      await tmp.remove()
    }
  })

  it('refuses reference data with no records, or none of the features, instead of a baseline of nothing', async () => {
    const example = await exampleProject()
    try {
      const reference = join(example.project, 'data', 'reference.csv')
      const header = readFileSync(reference, 'utf8').split('\n')[0]
      for (const [text, code] of [
        ['height,weight\n180,75\n', 'REFERENCE_COLUMNS_MISSING'],
        [`${header}\n`, 'REFERENCE_EMPTY'],
      ]) {
        writeFileSync(reference, text)
        const result = await mlops(['package', '--json', '--dir', example.project])
        assert.equal(result.exitCode, 2, result.stdout)
        assert.equal((result.json as {error: {code: string}}).error.code, code)
      }
    } finally {
      await example.remove()
    }
  })
})
