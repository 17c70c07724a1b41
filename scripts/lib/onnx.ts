// Writes a logistic regression as an ONNX graph: features[N,k] → MatMul(W) → Add(b) → Sigmoid → probability[N,1].
import onnxProto, {type onnx as Onnx} from 'onnx-proto'

import type {LogisticModel} from './logistic.js'

const {onnx} = onnxProto

export interface OnnxExport {
  input: string
  output: string
  /** Names of the input's columns, stored in the model's metadata so the file explains itself. */
  columns: readonly string[]
  docString: string
}

function floatTensorType(name: string, dims: Onnx.TensorShapeProto.IDimension[]): Onnx.IValueInfoProto {
  return {name, type: {tensorType: {elemType: onnx.TensorProto.DataType.FLOAT, shape: {dim: dims}}}}
}

export function logisticRegressionOnnx(model: LogisticModel, options: OnnxExport): Uint8Array {
  const k = model.weights.length
  const batch = {dimParam: 'N'}
  const graph: Onnx.IGraphProto = {
    name: 'logistic_regression',
    docString: options.docString,
    input: [floatTensorType(options.input, [batch, {dimValue: k}])],
    output: [floatTensorType(options.output, [batch, {dimValue: 1}])],
    initializer: [
      {name: 'W', dataType: onnx.TensorProto.DataType.FLOAT, dims: [k, 1], floatData: Array.from(model.weights)},
      {name: 'b', dataType: onnx.TensorProto.DataType.FLOAT, dims: [1], floatData: [model.bias]},
    ],
    node: [
      {name: 'matmul', opType: 'MatMul', input: [options.input, 'W'], output: ['logit_raw']},
      {name: 'add_bias', opType: 'Add', input: ['logit_raw', 'b'], output: ['logit']},
      {name: 'sigmoid', opType: 'Sigmoid', input: ['logit'], output: [options.output]},
    ],
  }
  const message = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{domain: '', version: 13}],
    producerName: 'mlops-example',
    producerVersion: '1',
    graph,
    metadataProps: [{key: 'columns', value: options.columns.join(',')}],
  })
  return onnx.ModelProto.encode(message).finish()
}
