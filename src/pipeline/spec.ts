// The pipeline as written in mlops.yaml (`pipeline:`) and as frozen into an artifact (every statistic resolved).
import type {Dtype} from '../model/tensor.js'

/**
 * `tensor` is a whole per-record array (an image, a sequence): a nested array or `{dtype, shape, data}` tensor JSON.
 * `image` is an encoded image (JPEG, PNG, WebP: base64 in JSON, a multipart file, a path in `mlops predict`) that the
 * feature's `image` steps turn into that tensor.
 */
export type FeatureType = 'number' | 'integer' | 'string' | 'boolean' | 'category' | 'tensor' | 'image'
export type Scalar = number | string | boolean

export type Impute =
  | 'mean'
  | 'median'
  | 'most_frequent'
  /** `from` records which statistic of the reference data the value was fitted as (set at package time). */
  | {value: Scalar; from?: 'mean' | 'median' | 'most_frequent'}

export type Transform =
  'log' | 'log1p' | {standardize: {mean?: number; std?: number}} | {minmax: {min?: number; max?: number}}

/** Categorical encodings; categories may be omitted in mlops.yaml and learned from the reference data at package time. */
export type Encode =
  | {onehot: {categories?: string[]; unknown?: 'ignore' | 'error'}}
  | {index: {categories?: string[]; unknown?: number | 'error'}}

export interface FeatureSpec {
  name: string
  type: FeatureType
  description?: string
  /** Default true unless `default` or `impute` is set. */
  required?: boolean
  default?: Scalar
  /** What a missing, null or NaN value becomes. Statistics come from the reference data at package time. */
  impute?: Impute
  clip?: {min?: number; max?: number}
  /** One transform, or several applied in order (impute → log1p → standardize). */
  transform?: Transform | Transform[]
  encode?: Encode
  /** Allowed values for `category` features. */
  categories?: string[]
  /** For `tensor` features: one record's shape, the model input's shape without the batch dimension (a string is a dynamic dim). Filled from the model when omitted. */
  shape?: (number | string)[]
  /** For `tensor` features: the element type, the model input's dtype. Filled from the model when omitted. */
  dtype?: Dtype
  /** For `tensor` features: the smallest size per dimension the model runs on (found by `mlops init`). */
  min_shape?: number[]
  /** Takes ±Infinity and values past the float32 range; refused by default (a 400 naming the field). */
  allow_non_finite?: boolean
  /** For `image` features: decode, orient, resize, crop, channels, scale, normalise, layout (see src/pipeline/image.ts). */
  image?: ImageSteps
}

/** How features become one model input: concatenated into one [N,k] tensor, or a single feature as [N,1]. */
export interface InputAssembly {
  /** The model input name. */
  input: string
  features: string[]
}

export interface OutputPostprocess {
  /** The model output name. */
  output: string
  /** Key of this output in each prediction (default: the output name). */
  as?: string
  activation?: 'none' | 'sigmoid' | 'softmax'
  /** Class names by index; turns argmax into a label. */
  labels?: string[]
  /** Binary decision on a single score (or on the positive class of two). */
  threshold?: number
  top_k?: number
  /**
   * The output is an image (an image-to-image model): each record's tensor is turned back into 0..255 pixels by these
   * steps undone, and answered as base64 PNG (or as the PNG itself with `Accept: image/png`).
   */
  image?: OutputImage
}

export interface PipelineSpec {
  features?: FeatureSpec[]
  inputs?: InputAssembly[]
  outputs?: OutputPostprocess[]
  /** A JS (ESM) module in the project exporting `preprocess(records)` and/or `postprocess(predictions, records, outputs)`; bundled into the artifact. */
  module?: string
}

/** A pipeline with every statistic and category list filled in: what an artifact carries, so serving needs no data. */
export interface ResolvedPipeline extends PipelineSpec {
  resolved: true
}

/** The steps, in the order they run. Every one is optional but the output size must be known (resize or crop). */
export interface ImageSteps {
  /** Turn the image upright by its EXIF orientation (default true). */
  orient?: boolean
  /**
   * Resize to width × height with `fit` (fill: stretch; cover: fill and cut the overflow; contain: fit inside, padded
   * black), or the shorter side to `shorter` keeping the aspect ratio. `filter` is the resampling kernel.
   */
  resize?: {
    width?: number
    height?: number
    shorter?: number
    fit?: 'fill' | 'cover' | 'contain'
    filter?: 'nearest' | 'linear' | 'cubic' | 'lanczos3'
  }
  /** Centre crop to width × height (after resizing). */
  crop?: {width: number; height: number}
  /** Channels: rgb (default), bgr, or grey (ITU-R 601 luma, as Pillow's "L"). */
  color?: 'rgb' | 'bgr' | 'grey'
  /** Multiplies each 0..255 value, e.g. 0.00392156862745098 (1/255). */
  scale?: number
  /** Per channel, after scale: (x - mean) / std. */
  normalize?: {mean: number[]; std: number[]}
  /** chw (default, as PyTorch) or hwc (as TensorFlow). */
  layout?: 'chw' | 'hwc'
}

/**
 * How the model's output tensor holds an image (pipeline.outputs[].image): the steps an image feature would have taken
 * to make such a tensor (channels, scale, normalise, layout), undone: pixel = (x·std + mean) / scale, clipped to 0..255.
 */
export type OutputImage = Pick<ImageSteps, 'color' | 'scale' | 'normalize' | 'layout'>
