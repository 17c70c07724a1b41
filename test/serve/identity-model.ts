// Builds a one-node ONNX model (y = Identity(x), x of shape [N,3]) for any dtype, to test every v2 datatype end to end.
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import onnxProto from 'onnx-proto'

const {onnx} = onnxProto

const ELEM_TYPE: Record<string, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
}

export function identityModel(dtype: string): string {
  const tensor = (name: string) => ({
    name,
    type: {tensorType: {elemType: ELEM_TYPE[dtype], shape: {dim: [{dimParam: 'N'}, {dimValue: 3}]}}},
  })
  const message = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{domain: '', version: 13}],
    producerName: 'mlops-test',
    graph: {
      name: `identity_${dtype}`,
      input: [tensor('x')],
      output: [tensor('y')],
      node: [{name: 'id', opType: 'Identity', input: ['x'], output: ['y']}],
    },
  })
  const path = join(mkdtempSync(join(tmpdir(), 'mlops-identity-')), `identity_${dtype}.onnx`)
  writeFileSync(path, onnx.ModelProto.encode(message).finish())
  return path
}
