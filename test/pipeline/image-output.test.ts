// Image outputs turned back into pixels (src/pipeline/image-output.ts): layouts, channel order, the steps undone,
// clipping, and the bound on the decoded size.
import assert from 'node:assert/strict'

import sharp from 'sharp'

import type {MlopsError} from '../../src/errors.js'
import {MAX_OUTPUT_PIXELS, encodePng, outputPixels} from '../../src/pipeline/image-output.js'

describe('image outputs to pixels', () => {
  it('reads CHW and HWC alike, writes RGB from BGR, undoes normalise and scale, and clips', () => {
    // Two pixels of three channels; CHW holds channel planes, HWC pixel after pixel.
    const chw = [0.1, 0.2, 0.5, 0.6, 0.9, 1.2]
    const hwc = [0.1, 0.5, 0.9, 0.2, 0.6, 1.2]
    const rgb = [26, 128, 230, 51, 153, 255]
    assert.deepEqual([...outputPixels(chw, 0, [3, 1, 2], {scale: 1 / 255}, 'y').data], rgb)
    assert.deepEqual([...outputPixels(hwc, 0, [1, 2, 3], {scale: 1 / 255, layout: 'hwc'}, 'y').data], rgb)
    const bgr = outputPixels(chw, 0, [3, 1, 2], {scale: 1 / 255, color: 'bgr'}, 'y')
    assert.deepEqual([...bgr.data], [230, 128, 26, 255, 153, 51])
    const normalize = {mean: [0.5], std: [0.25]}
    const grey = outputPixels([-2, 0, 2, Number.NaN], 0, [1, 2, 2], {color: 'grey', scale: 1 / 255, normalize}, 'y')
    assert.deepEqual([...grey.data], [0, 128, 255, 0])
    assert.deepEqual([grey.width, grey.height, grey.channels], [2, 2, 1])
  })

  it('refuses a record whose channels are not the color, and one past the pixel bound, before reading it', () => {
    const refused = (dims: number[], code: string) =>
      assert.throws(
        () => outputPixels([], 0, dims, {}, 'y'),
        (error: MlopsError) => error.code === code && /"y"/.test(error.message),
      )
    refused([1, 4, 4], 'OUTPUT_SHAPE')
    refused([3, 4, 4, 1], 'OUTPUT_SHAPE')
    refused([3, 4097, 4096], 'OUTPUT_IMAGE_SIZE')
    assert.ok(4097 * 4096 > MAX_OUTPUT_PIXELS)
  })

  it('encodes a PNG that decodes to the same pixels, grey as one channel', async () => {
    for (const channels of [1, 3] as const) {
      const data = Buffer.from(Array.from({length: 6 * channels}, (_, i) => (i * 37) % 256))
      const png = await encodePng({data, width: 3, height: 2, channels})
      assert.equal((await sharp(png).metadata()).channels, channels)
      const decoded = await sharp(png)
        .toColourspace(channels === 1 ? 'b-w' : 'srgb')
        .raw()
        .toBuffer()
      assert.deepEqual(decoded, data)
    }
  })
})
