// Image features: encoded bytes (JPEG, PNG, WebP) to one record's float tensor by declarative steps, with sharp (libvips)
// for decoding, EXIF orientation and resizing, and plain loops for what follows, so each step is exact and checkable.
import type {OutputInfo, ResizeOptions} from 'sharp'

import {type TensorJson, elementCount} from '../model/tensor.js'
import {INTEGER_DTYPES} from './layout.js'
import {loadSharp} from './sharp.js'
import type {FeatureSpec, ImageSteps} from './spec.js'
import type {InputRecord, RecordIssue} from './types.js'

export interface ImageTensor {
  data: Float32Array
  dims: number[]
}

/** Bounds on untrusted images: pixels decoded (a 1 KB PNG can claim 50000×50000) and seconds spent. */
const MAX_INPUT_PIXELS = 40_000_000
const TIMEOUT_SECONDS = 10

const KERNELS = {nearest: 'nearest', linear: 'linear', cubic: 'cubic', lanczos3: 'lanczos3'} as const

export class ImageInputError extends Error {}

/** Channels of a tensor the steps make (or an image output holds): 1 for grey, else 3. */
export function channelsOf(steps: Pick<ImageSteps, 'color'>): 1 | 3 {
  return steps.color === 'grey' ? 1 : 3
}

/** Problems of the normalize step against the channels, shared by image features and image outputs, under `path`. */
export function checkNormalize(
  steps: Pick<ImageSteps, 'color' | 'normalize'>,
  path: string,
): {path: string; message: string}[] {
  const issues: {path: string; message: string}[] = []
  const c = channelsOf(steps)
  if (steps.normalize && (steps.normalize.mean.length !== c || steps.normalize.std.length !== c))
    issues.push({path: `${path}.normalize`, message: `mean and std need ${c} values, one per channel`})
  if (steps.normalize?.std.some((s) => s === 0)) issues.push({path: `${path}.normalize.std`, message: 'must not be 0'})
  return issues
}

/** One record's tensor shape from the steps: [C,H,W] or [H,W,C]; undefined when the size depends on the image. */
export function imageShape(steps: ImageSteps): number[] | undefined {
  const size = steps.crop ?? (steps.resize?.width && steps.resize.height ? steps.resize : undefined)
  if (!size?.width || !size.height) return undefined
  const c = channelsOf(steps)
  return steps.layout === 'hwc' ? [size.height, size.width, c] : [c, size.height, size.width]
}

/** Problems of the steps themselves, as field paths under `path`. */
export function checkImageSteps(steps: ImageSteps, path: string): {path: string; message: string}[] {
  const issues: {path: string; message: string}[] = []
  const r = steps.resize
  if (r && r.shorter === undefined && (!r.width || !r.height))
    issues.push({path: `${path}.resize`, message: 'needs width and height, or shorter'})
  if (!imageShape(steps))
    issues.push({path, message: 'the output size must be known: resize to width and height, or crop'})
  issues.push(...checkNormalize(steps, path))
  return issues
}

/** torchvision's centre_crop offset: int(round((size - crop) / 2)), Python's round, which takes halves to even. */
function centreOffset(size: number, crop: number): number {
  const half = (size - crop) / 2
  const floor = Math.floor(half)
  if (half - floor !== 0.5) return Math.round(half)
  return floor % 2 === 0 ? floor : floor + 1
}

/** The size to resize to, and how: sharp's fit, from the steps. */
function resizeOptions(steps: ImageSteps): ResizeOptions | undefined {
  const r = steps.resize
  if (!r) return undefined
  const kernel = KERNELS[r.filter ?? 'linear']
  if (r.shorter !== undefined) return {width: r.shorter, height: r.shorter, fit: 'outside', kernel}
  const fit = r.fit ?? 'fill'
  return {width: r.width, height: r.height, fit, kernel, background: {r: 0, g: 0, b: 0}}
}

/** Encoded image bytes to one record's float32 tensor. Throws ImageInputError for bytes that are not an image. */
export async function imageToTensor(bytes: Uint8Array, steps: ImageSteps): Promise<ImageTensor> {
  const sharp = await loadSharp()
  let raw: {data: Buffer; info: OutputInfo}
  try {
    let image = sharp(bytes, {limitInputPixels: MAX_INPUT_PIXELS, failOn: 'error'}).timeout({seconds: TIMEOUT_SECONDS})
    if (steps.orient !== false) image = image.autoOrient()
    const resize = resizeOptions(steps)
    // fastShrinkOnLoad off: JPEG shrink-on-load would resample differently from the kernel asked for.
    if (resize) image = image.resize({...resize, fastShrinkOnLoad: false})
    raw = await image.toColourspace('srgb').removeAlpha().raw().toBuffer({resolveWithObject: true})
  } catch (error) {
    throw new ImageInputError(`is not an image sharp can read (JPEG, PNG, WebP): ${(error as Error).message}`)
  }
  let {width, height} = raw.info
  const pixels = raw.data
  const stride = raw.info.channels
  let x0 = 0
  let y0 = 0
  if (steps.crop) {
    if (steps.crop.width > width || steps.crop.height > height)
      throw new ImageInputError(
        `is ${width}×${height} after resizing, smaller than the ${steps.crop.width}×${steps.crop.height} crop`,
      )
    x0 = centreOffset(width, steps.crop.width)
    y0 = centreOffset(height, steps.crop.height)
    width = steps.crop.width
    height = steps.crop.height
  }
  const c = channelsOf(steps)
  const scale = steps.scale ?? 1
  const mean = steps.normalize?.mean ?? new Array<number>(c).fill(0)
  const std = steps.normalize?.std ?? new Array<number>(c).fill(1)
  const chw = steps.layout !== 'hwc'
  const data = new Float32Array(c * height * width)
  const order = steps.color === 'bgr' ? [2, 1, 0] : [0, 1, 2]
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = ((y + y0) * raw.info.width + (x + x0)) * stride
      for (let k = 0; k < c; k++) {
        const value =
          c === 1
            ? // Pillow's convert('L'): (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
              (pixels[at] * 19595 + pixels[at + 1] * 38470 + pixels[at + 2] * 7471 + 0x8000) >> 16
            : pixels[at + order[k]]
        const index = chw ? k * height * width + y * width + x : (y * width + x) * c + k
        data[index] = (value * scale - mean[k]) / std[k]
      }
    }
  }
  return {data, dims: chw ? [c, height, width] : [height, width, c]}
}

// ---------- image features in the pipeline ----------

/** An image as a record holds it: base64 (optionally a data: URL) in JSON, or bytes (a multipart file, a file read). */
function imageBytes(value: unknown): Uint8Array | string {
  if (value instanceof Uint8Array) return value
  if (typeof value !== 'string' || value.length === 0)
    return 'must be an image: base64 text (or a data: URL) in JSON, or a file in a multipart upload'
  const base64 = value.startsWith('data:') ? value.slice(value.indexOf(',') + 1) : value
  if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(base64)) return 'is not base64 text (nor a data: URL) of an image'
  return Buffer.from(base64, 'base64')
}

export interface ImageFeatures {
  /** Records whose images are replaced by zero tensors of the right shape, for the synchronous checks of the rest. */
  placeholders(records: readonly InputRecord[], issues: RecordIssue[]): InputRecord[]
  /** Records whose images are decoded into the tensors their steps make; problems go to `issues`. */
  decode(records: readonly InputRecord[], issues: RecordIssue[]): Promise<InputRecord[]>
}

/** The image features of a resolved pipeline, or undefined when it has none. */
export function compileImageFeatures(features: readonly FeatureSpec[]): ImageFeatures | undefined {
  const images = features.filter((f) => f.type === 'image')
  if (images.length === 0) return undefined
  const asTensor = (f: FeatureSpec, data: Float32Array): TensorJson => {
    const shape = f.shape as number[]
    if (f.dtype === undefined || f.dtype === 'float32')
      return {
        dtype: 'float32',
        shape,
        data_b64: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
      }
    return {dtype: f.dtype, shape, data: Array.from(data, (x) => (INTEGER_DTYPES.has(f.dtype!) ? Math.round(x) : x))}
  }
  const zeros = new Map(images.map((f) => [f.name, asTensor(f, new Float32Array(elementCount(f.shape as number[])))]))
  const each = (
    records: readonly InputRecord[],
    change: (f: FeatureSpec, record: InputRecord, index: number) => void,
  ) =>
    records.map((record, index) => {
      const copy = {...record}
      for (const f of images) change(f, copy, index)
      return copy
    })
  return {
    placeholders(records, issues) {
      return each(records, (f, record, index) => {
        const bytes = imageBytes(record[f.name])
        if (typeof bytes === 'string') issues.push({index, field: f.name, message: bytes})
        record[f.name] = zeros.get(f.name)
      })
    },
    async decode(records, issues) {
      const work: Promise<void>[] = []
      const out = each(records, (f, record, index) => {
        const bytes = imageBytes(record[f.name])
        // A bad image is one issue: a zero tensor stands in, so the tensor checks that follow say nothing more of it.
        record[f.name] = zeros.get(f.name)
        if (typeof bytes === 'string') {
          issues.push({index, field: f.name, message: bytes})
          return
        }
        work.push(
          imageToTensor(bytes, f.image ?? {}).then(
            ({data}) => void (record[f.name] = asTensor(f, data)),
            (error: Error) => void issues.push({index, field: f.name, message: error.message}),
          ),
        )
      })
      await Promise.all(work)
      return out
    },
  }
}
