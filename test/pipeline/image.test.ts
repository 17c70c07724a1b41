// Image steps (src/pipeline/image.ts, sharp) against a reference of the same steps in Pillow and NumPy (Debian's
// python3-pil and python3-numpy), on PNG, JPEG with an EXIF orientation, and WebP images made here.
import assert from 'node:assert/strict'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'
import sharp from 'sharp'

import {imageShape, imageToTensor} from '../../src/pipeline/image.js'
import type {ImageSteps} from '../../src/pipeline/spec.js'
import {tempDir} from '../support/cli.js'

const PYTHON = '/usr/bin/python3'
const REFERENCE = join(import.meta.dirname, 'image_reference.py')
const IMAGENET = {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}

/** A 97×61 picture with gradients, edges and noise: resampling differences show on it. */
function picture(width = 97, height = 61): Buffer {
  const pixels = Buffer.alloc(width * height * 3)
  let seed = 7
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      const at = (y * width + x) * 3
      pixels[at] = Math.round((255 * x) / (width - 1))
      pixels[at + 1] = (x > width / 3 && y > height / 3 ? 200 : 40) + (seed % 20)
      pixels[at + 2] = Math.round((255 * y) / (height - 1))
    }
  return pixels
}

async function hasReference(): Promise<boolean> {
  if (!existsSync(PYTHON)) return false
  const probe = await execa(PYTHON, ['-c', 'import PIL, numpy'], {reject: false})
  return probe.exitCode === 0
}

describe('image steps against Pillow and NumPy', function () {
  this.timeout(60_000)
  let dir: Awaited<ReturnType<typeof tempDir>>
  let files: Record<string, string>
  before(async function () {
    if (!(await hasReference())) {
      if (process.env.CI) assert.fail(`${PYTHON} with PIL and numpy is missing: install python3-pil python3-numpy`)
      this.skip()
    }
    dir = await tempDir('mlops-image-')
    const raw = {raw: {width: 97, height: 61, channels: 3 as const}}
    files = {
      png: join(dir.path, 'a.png'),
      jpeg: join(dir.path, 'rotated.jpg'),
      webp: join(dir.path, 'a.webp'),
    }
    await sharp(picture(), raw).png().toFile(files.png)
    // EXIF orientation 6: the stored pixels are turned; upright, the picture is 61 wide and 97 high.
    await sharp(picture(), raw).jpeg({quality: 95}).withMetadata({orientation: 6}).toFile(files.jpeg)
    await sharp(picture(), raw).webp({lossless: true}).toFile(files.webp)
  })
  after(async () => dir?.remove())

  /** Each case's tensor from mlops and from the reference, compared: the largest and the mean absolute difference. */
  async function compare(image: string, steps: ImageSteps): Promise<{max: number; mean: number; dims: number[]}> {
    const ours = await imageToTensor(readFileSync(image), steps)
    const out = join(dir.path, 'reference.f32')
    const jobs = JSON.stringify([{image, steps, out}])
    const {stdout} = await execa(PYTHON, [REFERENCE], {input: jobs})
    assert.deepEqual(ours.dims, JSON.parse(stdout) as number[], 'the same shape')
    assert.deepEqual(ours.dims, imageShape(steps))
    const bytes = readFileSync(out)
    const reference = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
    let max = 0
    let sum = 0
    for (let i = 0; i < reference.length; i++) {
      const d = Math.abs(reference[i] - ours.data[i])
      max = Math.max(max, d)
      sum += d
    }
    return {max, mean: sum / reference.length, dims: ours.dims}
  }

  it('agrees exactly without resampling: crop, channel order, grey, scale, normalise, layout', async () => {
    const cases: ImageSteps[] = [
      {crop: {width: 50, height: 40}, color: 'bgr', layout: 'hwc', scale: 1 / 255, normalize: IMAGENET},
      {crop: {width: 33, height: 21}, color: 'grey', scale: 1 / 255},
      {crop: {width: 97, height: 61}, layout: 'chw'},
    ]
    for (const steps of cases) {
      for (const image of [files.png, files.webp]) {
        const {max} = await compare(image, steps)
        assert.ok(max < 1e-5, `${image} ${JSON.stringify(steps)}: max difference ${max}`)
      }
    }
  })

  it("turns a JPEG upright by its EXIF orientation, within JPEG decoders' rounding", async () => {
    const {max, mean, dims} = await compare(files.jpeg, {crop: {width: 61, height: 97}, layout: 'hwc'})
    assert.deepEqual(dims, [97, 61, 3])
    // libjpeg-turbo (sharp) and Pillow's libjpeg may round the inverse DCT differently: a few levels of 255 at most.
    assert.ok(max <= 4, `max difference ${max} of 255`)
    assert.ok(mean <= 0.5, `mean difference ${mean} of 255`)
    const sideways = await compare(files.jpeg, {orient: false, crop: {width: 97, height: 61}, layout: 'hwc'})
    assert.deepEqual(sideways.dims, [61, 97, 3])
  })

  it('resizes as Pillow does within the stated tolerance, for each filter and mode', async () => {
    // Measured here: 1/255 (linear, cubic) or 2/255 (lanczos3) at most for a fixed size, 8/255 by the shorter side
    // (the kernels are the same; libvips and Pillow place and round their taps differently); the mean stays under 1e-3.
    const fixed = {max: 2.5 / 255, mean: 1e-3}
    const cases: {steps: ImageSteps; max: number; mean: number}[] = [
      {steps: {resize: {width: 48, height: 30, filter: 'linear'}, scale: 1 / 255}, ...fixed},
      {steps: {resize: {width: 48, height: 30, filter: 'cubic'}, scale: 1 / 255}, ...fixed},
      {steps: {resize: {width: 48, height: 30, filter: 'lanczos3'}, scale: 1 / 255}, ...fixed},
      {
        steps: {resize: {shorter: 40, filter: 'linear'}, crop: {width: 32, height: 32}, scale: 1 / 255},
        max: 10 / 255,
        mean: 1e-3,
      },
    ]
    for (const {steps, max, mean} of cases) {
      const found = await compare(files.png, steps)
      assert.ok(found.max <= max && found.mean <= mean, `${JSON.stringify(steps)}: ${JSON.stringify(found)}`)
    }
  })

  it('refuses bytes that are not an image, and a picture too large to decode, by name', async () => {
    await assert.rejects(imageToTensor(Buffer.from('not an image'), {crop: {width: 1, height: 1}}), /not an image/)
    const huge = await sharp({create: {width: 8000, height: 6000, channels: 3, background: 'white'}})
      .png({compressionLevel: 9})
      .toBuffer()
    await assert.rejects(imageToTensor(huge, {resize: {width: 2, height: 2}}), /pixel limit/)
  })
})
