// Image outputs (pipeline.outputs[].image): one record's tensor of an image-to-image model back to 0..255 pixels, by the
// steps of an image feature undone, and encoded as PNG with sharp.
import {MlopsError} from '../errors.js'
import {type Dim, type OutputSpec} from '../model/signature.js'
import type {OutputImage} from './spec.js'
import {channelsOf, checkNormalize} from './image.js'
import {isFixed} from './layout.js'
import {loadSharp} from './sharp.js'

/** Pixels encoded per image at most (4096×4096): an output past it is a model fault, answered as such. */
export const MAX_OUTPUT_PIXELS = 4096 * 4096

export interface Pixels {
  /** Interleaved rows, 1 or 3 channels of 8 bits (RGB or grey). */
  data: Buffer
  width: number
  height: number
  channels: 1 | 3
}

/** [C,H,W] (chw) or [H,W,C] (hwc): the height, width and channel dims of one record's part of the output. */
function axes(image: OutputImage): {c: number; h: number; w: number} {
  return image.layout === 'hwc' ? {h: 0, w: 1, c: 2} : {c: 0, h: 1, w: 2}
}

/** Problems of an image output against the model's output (its shape without the batch dim), as field paths. */
export function checkOutputImage(
  image: OutputImage,
  output: OutputSpec,
  path: string,
  decides: boolean,
): {path: string; message: string}[] {
  const issues: {path: string; message: string}[] = []
  if (decides) issues.push({path, message: 'an image output takes no labels, threshold or top_k'})
  issues.push(...checkNormalize(image, path))
  // Undoing a scale of 0 divides by it.
  if (image.scale === 0) issues.push({path: `${path}.scale`, message: 'must not be 0'})
  const c = channelsOf(image)
  const shape = output.shape
  if (!shape) return issues
  const row: Dim[] = shape.length === 4 ? shape.slice(1) : shape
  const layout = image.layout ?? 'chw'
  if (row.length !== 3) {
    issues.push({
      path,
      message: `"${output.name}" has shape [${shape.join(',')}]; an image output is [N,C,H,W] (layout chw) or [N,H,W,C] (hwc)`,
    })
    return issues
  }
  const at = axes(image)
  const channels = row[at.c]
  if (isFixed(channels) && channels !== c)
    issues.push({
      path: `${path}.color`,
      message: `"${output.name}" has ${channels} channels (dim ${at.c + 1} of [${shape.join(',')}], layout ${layout}); color ${image.color ?? 'rgb'} needs ${c}`,
    })
  const [h, w] = [row[at.h], row[at.w]]
  if (isFixed(h) && isFixed(w) && h * w > MAX_OUTPUT_PIXELS)
    issues.push({
      path,
      message: `"${output.name}" is ${w}×${h}, past the ${MAX_OUTPUT_PIXELS} pixels an output may have`,
    })
  return issues
}

/** One record's values (`count` from `start`, shaped `dims`) to 8-bit pixels, interleaved RGB or grey. */
export function outputPixels(
  values: ArrayLike<number>,
  start: number,
  dims: readonly number[],
  image: OutputImage,
  name: string,
): Pixels {
  const at = axes(image)
  const c = channelsOf(image)
  if (dims.length !== 3 || dims[at.c] !== c)
    throw new MlopsError(
      'OUTPUT_SHAPE',
      `Model output "${name}" gave a record of shape [${dims.join(',')}], not an image of ${c} channels in layout ${image.layout ?? 'chw'}`,
      {
        hint: 'Check pipeline.outputs[].image (color, layout) in mlops.yaml against the model, then run "mlops package" again.',
      },
    )
  const height = dims[at.h]
  const width = dims[at.w]
  if (height * width > MAX_OUTPUT_PIXELS || height === 0 || width === 0)
    throw new MlopsError(
      'OUTPUT_IMAGE_SIZE',
      `Model output "${name}" is a ${width}×${height} image; an image output has 1 to ${MAX_OUTPUT_PIXELS} pixels`,
      {hint: "Send a smaller input image, or resize it in the feature's image steps."},
    )
  const scale = image.scale ?? 1
  const mean = image.normalize?.mean ?? new Array<number>(c).fill(0)
  const std = image.normalize?.std ?? new Array<number>(c).fill(1)
  // The tensor's channel k is RGB's k, or BGR's: pixels are written RGB.
  const order = image.color === 'bgr' ? [2, 1, 0] : [0, 1, 2]
  const chw = image.layout !== 'hwc'
  const data = Buffer.alloc(height * width * c)
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let k = 0; k < c; k++) {
        const index = chw ? k * height * width + y * width + x : (y * width + x) * c + k
        const value = (values[start + index] * std[k] + mean[k]) / scale
        // NaN (a model fault) becomes 0, as does anything below 0.
        data[(y * width + x) * c + order[k]] = value > 0 ? Math.min(255, Math.round(value)) : 0
      }
  return {data, width, height, channels: c}
}

/** PNG bytes of the pixels. */
export async function encodePng(pixels: Pixels): Promise<Buffer> {
  const {data, width, height, channels} = pixels
  const sharp = await loadSharp()
  const image = sharp(data, {raw: {width, height, channels}})
  // sharp writes sRGB unless told: a grey output stays one channel.
  return (channels === 1 ? image.toColourspace('b-w') : image).png().toBuffer()
}
