// An image-to-image model (made here: 1 - x, each pixel a 2×2 block) packaged with an image feature and an image output,
// served and run by mlops predict: the PNG it answers (base64 in JSON, the bytes for Accept: image/png) holds the pixels
// Pillow and NumPy make of the same steps and model.
import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {Validator} from '@seriousme/openapi-schema-validator'
import {Ajv2020} from 'ajv/dist/2020.js'
import {execa} from 'execa'
import sharp from 'sharp'

import {type Serving, startServing} from '../../src/serve/load.js'
import {mlops, tempDir} from '../support/cli.js'
import {invertUpsampleModel} from '../support/onnx-fixtures.js'

const PYTHON = '/usr/bin/python3'
const REFERENCE = join(import.meta.dirname, '..', 'pipeline', 'image_output_reference.py')

interface Project {
  dir: string
  steps: object
  output: object
  serving: Serving
}

/** A 16×12 picture with gradients and a block of noise: every value from dark to light appears. */
function picture(width = 16, height = 12): Buffer {
  const pixels = Buffer.alloc(width * height * 3)
  let seed = 11
  for (let i = 0; i < width * height; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    const [x, y] = [i % width, Math.floor(i / width)]
    pixels.set([Math.round((255 * x) / (width - 1)), seed % 256, Math.round((255 * y) / (height - 1))], i * 3)
  }
  return pixels
}

/** What the reference finds comparing mlops's PNG with its own pixels for the project's steps. */
async function compare(project: Project, image: string, png: Buffer) {
  const answer = join(project.dir, 'answer.png')
  writeFileSync(answer, png)
  const job = {image, steps: project.steps, output: project.output, png: answer}
  const {stdout} = await execa(PYTHON, [REFERENCE], {input: JSON.stringify(job)})
  return JSON.parse(stdout) as {size: number[]; mode: string; max_diff: number; differing: number}
}

async function predict(url: string, body: object, accept?: string): Promise<Response> {
  return fetch(`${url}/v1/predict`, {
    method: 'POST',
    headers: {'content-type': 'application/json', ...(accept ? {accept} : {})},
    body: JSON.stringify(body),
  })
}

describe('an image-to-image model answering PNG (e2e)', function () {
  this.timeout(180_000)
  let dir: Awaited<ReturnType<typeof tempDir>>
  let image: string
  let photo: string
  const projects: Record<'rgb' | 'grey', Project> = {} as Record<'rgb' | 'grey', Project>

  /** A project serving the model with `channels` and `layout`, the feature's steps and the output's. */
  async function serve(name: 'rgb' | 'grey', layout: 'chw' | 'hwc', steps: object, output: object): Promise<void> {
    const project = join(dir.path, name)
    await execa('mkdir', ['-p', project])
    writeFileSync(join(project, 'model.onnx'), invertUpsampleModel(name === 'rgb' ? 3 : 1, layout))
    writeFileSync(
      join(project, 'mlops.yaml'),
      `name: ${name}-inverter
version: 1.0.0
model:
  path: model.onnx
pipeline:
  features:
    - name: photo
      type: image
      image: ${JSON.stringify(steps)}
  outputs:
    - output: y
      as: inverted
      image: ${JSON.stringify(output)}
`,
    )
    const packaged = await mlops(['package', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stdout + packaged.stderr)
    const serving = await startServing({dir: project, settings: {port: 0, host: '127.0.0.1'}})
    projects[name] = {dir: project, steps, output, serving}
  }

  before(async function () {
    const probe = existsSync(PYTHON) && (await execa(PYTHON, ['-c', 'import PIL, numpy'], {reject: false})).exitCode
    if (probe !== 0) {
      if (process.env.CI) assert.fail(`${PYTHON} with PIL and numpy is missing: install python3-pil python3-numpy`)
      this.skip()
    }
    dir = await tempDir('mlops-image-output-')
    image = join(dir.path, 'picture.png')
    await sharp(picture(), {raw: {width: 16, height: 12, channels: 3}})
      .png()
      .toFile(image)
    photo = readFileSync(image).toString('base64')
    const scale = 1 / 255
    await serve('rgb', 'chw', {crop: {width: 16, height: 12}, scale}, {scale})
    const normalize = {mean: [0.45], std: [0.2]}
    const grey = {crop: {width: 16, height: 12}, color: 'grey', scale, normalize, layout: 'hwc'}
    await serve('grey', 'hwc', grey, {color: 'grey', scale, normalize, layout: 'hwc'})
  })
  after(async () => {
    for (const project of Object.values(projects)) await project.serving.stop(1000)
    await dir?.remove()
  })

  it('answers each record an RGB PNG, base64 in JSON, with the reference pixels exactly', async () => {
    const answer = await predict(projects.rgb.serving.url, {instances: [{photo}, {photo}]})
    assert.equal(answer.status, 200)
    const {predictions} = (await answer.json()) as {predictions: {inverted: string}[]}
    assert.equal(predictions.length, 2)
    const png = Buffer.from(predictions[0].inverted, 'base64')
    assert.deepEqual(await compare(projects.rgb, image, png), {size: [32, 24], mode: 'RGB', max_diff: 0, differing: 0})
    assert.equal(predictions[1].inverted, predictions[0].inverted)
  })

  it('takes normalised grey HWC back to grey pixels within one level of the reference', async () => {
    const answer = await predict(projects.grey.serving.url, {instances: [{photo}]})
    assert.equal(answer.status, 200)
    const [prediction] = ((await answer.json()) as {predictions: {inverted: string}[]}).predictions
    const found = await compare(projects.grey, image, Buffer.from(prediction.inverted, 'base64'))
    assert.deepEqual(found.size, [32, 24])
    assert.equal(found.mode, 'L')
    // float32 in the model against float64 in NumPy: a value at .5 may round either way.
    assert.ok(found.max_diff <= 1, `the pixels differ by up to ${found.max_diff}`)
  })

  it('answers the PNG bytes for Accept: image/png, from JSON or a multipart upload, and 406 for two records', async () => {
    const {url} = projects.rgb.serving
    const asJson = (await (await predict(url, {instances: [{photo}]})).json()) as {predictions: {inverted: string}[]}
    const bytes = await predict(url, {instances: [{photo}]}, 'image/png')
    assert.equal(bytes.status, 200)
    assert.equal(bytes.headers.get('content-type'), 'image/png')
    const png = Buffer.from(await bytes.arrayBuffer())
    assert.deepEqual(png, Buffer.from(asJson.predictions[0].inverted, 'base64'))
    const form = new FormData()
    form.append('photo', new Blob([readFileSync(image)], {type: 'image/png'}), 'picture.png')
    const uploaded = await fetch(`${url}/v1/predict`, {method: 'POST', body: form, headers: {accept: 'image/*'}})
    assert.equal(uploaded.status, 200)
    assert.deepEqual(Buffer.from(await uploaded.arrayBuffer()), png)
    // */* (fetch's default) and JSON ranked first stay JSON.
    const either = await predict(url, {instances: [{photo}]}, 'application/json, image/png;q=0.5')
    assert.equal(either.headers.get('content-type'), 'application/json')
    // Equal q-values: the client's order decides.
    const first = await predict(url, {instances: [{photo}]}, 'image/png, application/json')
    assert.equal(first.headers.get('content-type'), 'image/png')
    const two = await predict(url, {instances: [{photo}, {photo}]}, 'image/png')
    assert.equal(two.status, 406)
    const {error} = (await two.json()) as {error: {code: string; field: string; message: string}}
    assert.equal(error.code, 'NOT_ACCEPTABLE')
    assert.equal(error.field, 'instances')
  })

  it('documents the output as a base64 PNG, and the image/png answer, in a valid /openapi.json', async () => {
    const {url} = projects.rgb.serving
    const doc = (await (await fetch(`${url}/openapi.json`)).json()) as {
      components: {schemas: {Prediction: {properties: Record<string, object>}}}
      paths: {'/v1/predict': {post: {responses: Record<string, {content?: Record<string, object>}>}}}
    }
    assert.deepEqual(doc.components.schemas.Prediction.properties.inverted, {
      type: 'string',
      contentEncoding: 'base64',
      contentMediaType: 'image/png',
      description: 'A PNG image, in base64',
    })
    const checked = await new Validator().validate(structuredClone(doc))
    assert.ok(checked.valid, JSON.stringify(checked.errors)?.slice(0, 2000))
    const responses = doc.paths['/v1/predict'].post.responses
    assert.ok(responses['200'].content?.['image/png'])
    assert.ok(responses['406'])
    const ajv = new Ajv2020({strict: false})
    ajv.addSchema({...doc, $id: 'doc'})
    const answer = await (await predict(url, {instances: [{photo}]})).json()
    assert.ok(ajv.getSchema('doc#/components/schemas/PredictResponse')!(answer))
  })

  it('writes each PNG in base64 in the JSON lines of mlops predict, as the server answers it', async () => {
    const project = projects.rgb.dir
    writeFileSync(join(dir.path, 'photos.csv'), `id,photo\n7,${image}\n`)
    const output = join(dir.path, 'inverted.jsonl')
    const args = ['predict', '--input', join(dir.path, 'photos.csv'), '--output', output, '--keep', 'id']
    const run = await mlops([...args, '--dir', project])
    assert.equal(run.exitCode, 0, run.stderr)
    const [line] = readFileSync(output, 'utf8').trim().split('\n')
    const row = JSON.parse(line) as {id: number; prediction: {inverted: string}}
    const served = (await (await predict(projects.rgb.serving.url, {instances: [{photo}]})).json()) as {
      predictions: {inverted: string}[]
    }
    assert.equal(row.prediction.inverted, served.predictions[0].inverted)
  })

  it('refuses at package time an image output whose channels are not the color', async () => {
    const project = projects.rgb.dir
    const config = join(project, 'mlops.yaml')
    const text = readFileSync(config, 'utf8')
    writeFileSync(config, text.replace('image: {"scale"', 'image: {"color":"grey","scale"'))
    try {
      const packaged = await mlops(['package', '--json', '--dir', project])
      assert.equal(packaged.exitCode, 2, packaged.stdout)
      assert.match(packaged.stderr + packaged.stdout, /pipeline\.outputs\[0\]\.image\.color.*3 channels/)
    } finally {
      writeFileSync(config, text)
    }
  })
})
