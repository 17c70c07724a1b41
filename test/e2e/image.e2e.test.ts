// An image classifier (mnist_cnn) packaged with image steps, its golden case checked at package time, and served: a PNG
// or a JPEG sent as base64 gives the answer the tensor path gives for the same steps done by Pillow and NumPy.
import assert from 'node:assert/strict'
import {copyFileSync, existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'
import * as ort from 'onnxruntime-node'
import sharp from 'sharp'

import {type Serving, startServing} from '../../src/serve/load.js'
import {MODELS_DIR, mlops, tempDir} from '../support/cli.js'

const PYTHON = '/usr/bin/python3'
const REFERENCE = join(import.meta.dirname, '..', 'pipeline', 'image_reference.py')
const STEPS = {resize: {width: 28, height: 28, filter: 'linear'}, color: 'grey'}
const LABELS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']

/** A 56×56 "7": white strokes on black, as MNIST digits are, twice the size the model takes. */
function seven(): Buffer {
  const size = 56
  const pixels = Buffer.alloc(size * size)
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const top = y >= 10 && y < 16 && x >= 12 && x < 44
      const stroke = Math.abs(x - (44 - (y - 10) * 0.45)) < 3.5 && y >= 10 && y < 48
      pixels[y * size + x] = top || stroke ? 255 : 0
    }
  return pixels
}

/** The tensor the reference (Pillow, NumPy) makes of an image with STEPS: [1, 28, 28] float32. */
async function referenceTensor(image: string, out: string): Promise<Float32Array> {
  await execa(PYTHON, [REFERENCE], {input: JSON.stringify([{image, steps: STEPS, out}])})
  const bytes = readFileSync(out)
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
}

function argmax(xs: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i
  return best
}

describe('an image model served from PNG and JPEG (e2e)', function () {
  this.timeout(180_000)
  let dir: Awaited<ReturnType<typeof tempDir>>
  let serving: Serving
  let png: string
  let jpeg: string
  before(async function () {
    if (!existsSync(PYTHON)) {
      if (process.env.CI) assert.fail(`${PYTHON} is missing: install python3-pil python3-numpy`)
      this.skip()
    }
    dir = await tempDir('mlops-image-e2e-')
    const project = dir.path
    copyFileSync(join(MODELS_DIR, 'mnist_cnn.onnx'), join(project, 'model.onnx'))
    png = join(project, 'seven.png')
    jpeg = join(project, 'seven.jpg')
    const raw = {raw: {width: 56, height: 56, channels: 1 as const}}
    await sharp(seven(), raw).png().toFile(png)
    await sharp(seven(), raw).jpeg({quality: 90}).toFile(jpeg)
    // The golden case's expected logits: the model run by hand on the reference's tensor.
    const session = await ort.InferenceSession.create(join(project, 'model.onnx'))
    const tensor = await referenceTensor(png, join(project, 'golden.f32'))
    const outputs = await session.run({Input3: new ort.Tensor('float32', tensor, [1, 1, 28, 28])})
    const logits = Array.from(outputs.Plus214_Output_0.data as Float32Array)
    await session.release()
    const golden = {
      name: 'a seven, as PNG',
      records: [{digit: readFileSync(png).toString('base64')}],
      expected: {predictions: [{label: LABELS[argmax(logits)]}]},
    }
    writeFileSync(join(project, 'golden.jsonl'), JSON.stringify(golden) + '\n')
    writeFileSync(
      join(project, 'mlops.yaml'),
      `name: digits
version: 1.0.0
model:
  path: model.onnx
data:
  golden: golden.jsonl
pipeline:
  features:
    - name: digit
      type: image
      image: ${JSON.stringify(STEPS)}
  outputs:
    - output: Plus214_Output_0
      labels: ${JSON.stringify(LABELS)}
`,
    )
    const packaged = await mlops(['package', '--json', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stdout + packaged.stderr)
    assert.deepEqual((packaged.json as {golden: object}).golden, {total: 1, passed: 1, failed: 0})
    serving = await startServing({dir: project, settings: {port: 0, host: '127.0.0.1'}})
  })
  after(async () => {
    await serving?.stop(1000)
    await dir?.remove()
  })

  for (const kind of ['png', 'jpeg'] as const) {
    it(`answers a ${kind.toUpperCase()} as the tensor path answers the reference's tensor of it`, async () => {
      const image = kind === 'png' ? png : jpeg
      const predicted = await fetch(`${serving.url}/v1/predict`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({instances: [{digit: readFileSync(image).toString('base64')}]}),
      })
      assert.equal(predicted.status, 200)
      const [prediction] = ((await predicted.json()) as {predictions: {label: string; probabilities: object}[]})
        .predictions
      const tensor = await referenceTensor(image, join(dir.path, `${kind}.f32`))
      const inferred = await fetch(`${serving.url}/v2/models/digits/infer`, {
        method: 'POST',
        headers: {'content-type': 'application/json'},
        body: JSON.stringify({inputs: [{name: 'Input3', shape: [1, 1, 28, 28], datatype: 'FP32', data: [...tensor]}]}),
      })
      assert.equal(inferred.status, 200)
      const logits = ((await inferred.json()) as {outputs: {data: number[]}[]}).outputs[0].data
      assert.equal(prediction.label, LABELS[argmax(logits)])
      assert.equal(prediction.label, 'seven')
      // The image path's scores (logits: no activation) against the tensor path's, relative to the largest: identical
      // for the PNG (measured 0), 8e-4 for the JPEG (libjpeg-turbo and Pillow's libjpeg decode it a little apart).
      const scores = Object.values(prediction.probabilities) as number[]
      const worst = Math.max(...logits.map((x, i) => Math.abs(x - scores[i])))
      const scale = Math.max(...logits.map(Math.abs))
      assert.ok(worst / scale < (kind === 'png' ? 1e-6 : 2e-3), `logits differ by ${worst} of ${scale}`)
    })
  }

  it('answers a multipart upload of the PNG as it answers its base64', async () => {
    const form = new FormData()
    form.append('digit', new Blob([readFileSync(png)], {type: 'image/png'}), 'seven.png')
    const uploaded = await fetch(`${serving.url}/v1/predict`, {method: 'POST', body: form})
    assert.equal(uploaded.status, 200)
    const asJson = await fetch(`${serving.url}/v1/predict`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({instances: [{digit: readFileSync(png).toString('base64')}]}),
    })
    const predictions = (response: unknown) => (response as {predictions: unknown[]}).predictions
    assert.deepEqual(predictions(await uploaded.json()), predictions(await asJson.json()))
    const doc = (await (await fetch(`${serving.url}/openapi.json`)).json()) as {
      paths: {'/v1/predict': {post: {requestBody: {content: Record<string, {schema: {properties: object}}>}}}}
    }
    const upload = doc.paths['/v1/predict'].post.requestBody.content['multipart/form-data']
    assert.deepEqual(upload.schema.properties, {digit: {type: 'string', contentMediaType: 'image/*'}})
  })

  it('scores a CSV of image paths with mlops predict, a missing file as a bad row', async () => {
    const input = join(dir.path, 'images.csv')
    writeFileSync(input, 'id,digit\n1,seven.png\n2,seven.jpg\n3,missing.png\n')
    const output = join(dir.path, 'labels.csv')
    const args = ['predict', '--input', input, '--output', output, '--keep', 'id', '--json', '--dir', dir.path]
    const run = await mlops(args)
    assert.equal(run.exitCode, 1, run.stderr)
    // line is the CSV line: the header is line 1.
    const lines = readFileSync(output, 'utf8').trim().split('\n')
    assert.match(lines[1], /^2,1,seven,/)
    assert.match(lines[2], /^3,2,seven,/)
    assert.match(lines[3], /^4,3,.*cannot read the image file missing\.png \(ENOENT\)/)
  })

  it('refuses what is not an image with a 400 naming the field', async () => {
    const answer = await fetch(`${serving.url}/v1/predict`, {
      method: 'POST',
      headers: {'content-type': 'application/json'},
      body: JSON.stringify({instances: [{digit: Buffer.from('not a picture').toString('base64')}]}),
    })
    assert.equal(answer.status, 400)
    const {error} = (await answer.json()) as {error: {field: string; message: string}}
    assert.match(error.field, /digit/)
    assert.match(error.message, /not an image/)
  })
})
