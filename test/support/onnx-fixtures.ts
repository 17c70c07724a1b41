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
