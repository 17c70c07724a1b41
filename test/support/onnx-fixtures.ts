// Tiny ONNX models written with onnx-proto, for the cases the shared models do not cover (types Node cannot serve, sequences).
import onnxProto, {type onnx as Onnx} from 'onnx-proto'

const {onnx} = onnxProto
const T = onnx.TensorProto.DataType

function tensorType(elemType: number, dims: Onnx.TensorShapeProto.IDimension[]): Onnx.ITypeProto {
  return {tensorType: {elemType, shape: {dim: dims}}}
}

function model(input: Onnx.ITypeProto, output: Onnx.ITypeProto, opType = 'Identity', opset = 21): Uint8Array {
  const graph: Onnx.IGraphProto = {
    name: 'fixture',
    input: [{name: 'x', type: input}],
    output: [{name: 'y', type: output}],
    node: [{opType, input: ['x'], output: ['y']}],
  }
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 10,
      opsetImport: [{domain: '', version: opset}],
      producerName: 'mlops-test',
      graph,
    }),
  ).finish()
}

/** Identity over a tensor of the given ONNX element type: BFLOAT16 (16), INT4 (22), FLOAT8E4M3FN (17)… */
export function identityModel(elemType: number): Uint8Array {
  const t = tensorType(elemType, [{dimParam: 'N'}, {dimValue: 2}])
  return model(t, t)
}

/** A model whose input is a sequence of tensors: the Node binding cannot build one. */
export function sequenceInputModel(): Uint8Array {
  const seq: Onnx.ITypeProto = {sequenceType: {elemType: tensorType(T.FLOAT, [{dimValue: 2}])}}
  return model(seq, tensorType(T.INT64, []), 'SequenceLength')
}

/** An opset newer than onnxruntime 1.30 supports. */
export function futureOpsetModel(): Uint8Array {
  const t = tensorType(T.FLOAT, [{dimParam: 'N'}, {dimValue: 2}])
  return model(t, t, 'Identity', 27)
}

export const ELEM = {BFLOAT16: T.BFLOAT16, INT4: 22, FLOAT8E4M3FN: 17, FLOAT: T.FLOAT}

/** float[N,2] → QuantizeLinear to int4: an int4 output, which aborts the Node process if it is ever run. */
export function int4OutputModel(): Uint8Array {
  const graph: Onnx.IGraphProto = {
    name: 'int4_output',
    input: [{name: 'x', type: tensorType(T.FLOAT, [{dimParam: 'N'}, {dimValue: 2}])}],
    output: [{name: 'y', type: tensorType(ELEM.INT4, [{dimParam: 'N'}, {dimValue: 2}])}],
    initializer: [
      {name: 'scale', dataType: T.FLOAT, dims: [], floatData: [1]},
      {name: 'zero', dataType: ELEM.INT4, dims: [], int32Data: [0]},
    ],
    node: [{opType: 'QuantizeLinear', input: ['x', 'scale', 'zero'], output: ['y']}],
  }
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 10,
      opsetImport: [{domain: '', version: 21}],
      producerName: 'mlops-test',
      graph,
    }),
  ).finish()
}

function encodeGraph(graph: Onnx.IGraphProto, opset = 21): Uint8Array {
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 10,
      opsetImport: [{domain: '', version: opset}],
      producerName: 'mlops-test',
      graph,
    }),
  ).finish()
}

function floats(name: string, dims: number[], seed = 1): Onnx.ITensorProto {
  const count = dims.reduce((a, b) => a * b, 1)
  return {
    name,
    dataType: T.FLOAT,
    dims,
    floatData: Array.from({length: count}, (_, i) => ((i * 7 + seed) % 11) / 10 - 0.5),
  }
}

const dim = (d: number | string): Onnx.TensorShapeProto.IDimension =>
  typeof d === 'number' ? {dimValue: d} : {dimParam: d}
const floatType = (...dims: (number | string)[]) => tensorType(T.FLOAT, dims.map(dim))

/** x float[N,k] → MatMul with a [k,m] weight → y float[N,m] named `output` (a regressor, an embedding, a projection). */
export function matMulModel(k: number | string, weightRows: number, m: number, output: string): Uint8Array {
  return encodeGraph({
    name: 'matmul',
    input: [{name: 'x', type: floatType('N', k)}],
    output: [{name: output, type: floatType('N', m)}],
    initializer: [floats('w', [weightRows, m])],
    node: [{opType: 'MatMul', input: ['x', 'w'], output: [output]}],
  })
}

/** x float[N,4] → two softmax heads of the same shape [N,3]: only one may add label/score/probabilities. */
export function twinSoftmaxModel(): Uint8Array {
  return encodeGraph({
    name: 'twin',
    input: [{name: 'x', type: floatType('N', 4)}],
    output: [
      {name: 'head_a', type: floatType('N', 3)},
      {name: 'head_b', type: floatType('N', 3)},
    ],
    initializer: [floats('wa', [4, 3], 1), floats('wb', [4, 3], 5)],
    node: [
      {opType: 'MatMul', input: ['x', 'wa'], output: ['za']},
      {opType: 'MatMul', input: ['x', 'wb'], output: ['zb']},
      {opType: 'Softmax', input: ['za'], output: ['head_a'], attribute: [{name: 'axis', type: 2, i: 1}]},
      {opType: 'Softmax', input: ['zb'], output: ['head_b'], attribute: [{name: 'axis', type: 2, i: 1}]},
    ],
  })
}

/** No inputs at all: a constant [1,3] output. */
export function noInputModel(): Uint8Array {
  return encodeGraph({
    name: 'constant',
    input: [],
    output: [{name: 'y', type: floatType(1, 3)}],
    node: [
      {opType: 'Constant', input: [], output: ['y'], attribute: [{name: 'value', type: 4, t: floats('c', [1, 3])}]},
    ],
  })
}

/** idx int64[N] → Gather from a [3,2] table → y float[N,2]: indices past 2 fail the run. */
export function gatherModel(): Uint8Array {
  return encodeGraph({
    name: 'gather',
    input: [{name: 'idx', type: tensorType(T.INT64, [dim('N')])}],
    output: [{name: 'y', type: floatType('N', 2)}],
    initializer: [floats('table', [3, 2])],
    node: [{opType: 'Gather', input: ['table', 'idx'], output: ['y'], attribute: [{name: 'axis', type: 2, i: 0}]}],
  })
}

/** audio float[N,T] → a convolution with a kernel of 200 samples: shorter audio fails the run. */
export function convModel(kernel = 200): Uint8Array {
  return encodeGraph({
    name: 'conv',
    input: [{name: 'audio', type: floatType('N', 'T')}],
    output: [{name: 'energy', type: floatType('N', 1)}],
    initializer: [
      floats('k', [1, 1, kernel]),
      {name: 'axes', dataType: T.INT64, dims: [1], int64Data: [1]},
      {name: 'reduce', dataType: T.INT64, dims: [1], int64Data: [2]},
    ],
    node: [
      {opType: 'Unsqueeze', input: ['audio', 'axes'], output: ['a3']},
      {opType: 'Conv', input: ['a3', 'k'], output: ['c']},
      {opType: 'ReduceMean', input: ['c', 'reduce'], output: ['m'], attribute: [{name: 'keepdims', type: 2, i: 0}]},
      {opType: 'Identity', input: ['m'], output: ['energy']},
    ],
  })
}

/** x optional(tensor(float)[N,2]) → OptionalGetElement → y float[N,2]: onnxruntime-node feeds a plain tensor to it. */
export function optionalInputModel(): Uint8Array {
  return encodeGraph({
    name: 'optional_input',
    input: [{name: 'x', type: {optionalType: {elemType: floatType('N', 2)}}}],
    output: [{name: 'y', type: floatType('N', 2)}],
    node: [{opType: 'OptionalGetElement', input: ['x'], output: ['y']}],
  })
}

/**
 * An image-to-image model: x float[N,C,H,W] (or [N,H,W,C] for hwc) → y = 1 - x, upsampled 2× by nearest neighbour
 * (each pixel becomes a 2×2 block). With values 0..1 it inverts a picture and doubles its size.
 */
export function invertUpsampleModel(channels: 1 | 3, layout: 'chw' | 'hwc' = 'chw'): Uint8Array {
  const chw = layout === 'chw'
  const io = (h: string, w: string) => (chw ? floatType('N', channels, h, w) : floatType('N', h, w, channels))
  return encodeGraph({
    name: 'invert_upsample',
    input: [{name: 'x', type: io('H', 'W')}],
    output: [{name: 'y', type: io('H2', 'W2')}],
    initializer: [
      {name: 'one', dataType: T.FLOAT, dims: [], floatData: [1]},
      {name: 'scales', dataType: T.FLOAT, dims: [4], floatData: chw ? [1, 1, 2, 2] : [1, 2, 2, 1]},
    ],
    node: [
      {opType: 'Sub', input: ['one', 'x'], output: ['inverted']},
      {
        opType: 'Resize',
        input: ['inverted', '', 'scales'],
        output: ['y'],
        attribute: [{name: 'mode', type: 3, s: new TextEncoder().encode('nearest')}],
      },
    ],
  })
}
