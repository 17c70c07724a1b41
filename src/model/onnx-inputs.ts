// The declared type of graph inputs that onnxruntime-node reports without one (optional(tensor) inputs), read from the
// ONNX protobuf with a small bounded reader: only the fields on the path ModelProto.graph.input[].type are decoded.
import {readFile} from 'node:fs/promises'

import type {Dim, Dtype} from './tensor.js'

/** TensorProto.DataType numbers onnxruntime-node can feed. */
const ELEM_TYPES: Record<number, Dtype> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
}

interface Field {
  number: number
  /** A varint's value, or undefined for other wire types. */
  value?: number
  /** A length-delimited field's bytes. */
  bytes?: Uint8Array
}

class Reader {
  private offset = 0
  constructor(private readonly buf: Uint8Array) {}

  private varint(): number {
    let result = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      if (this.offset >= this.buf.length) throw new Error('truncated varint')
      const byte = this.buf[this.offset++]
      result += (byte & 0x7f) * scale
      if ((byte & 0x80) === 0) return result
      scale *= 128
    }
    throw new Error('varint too long')
  }

  *fields(): Generator<Field> {
    while (this.offset < this.buf.length) {
      const key = this.varint()
      const number = Math.floor(key / 8)
      switch (key % 8) {
        case 0:
          yield {number, value: this.varint()}
          break
        case 1:
          this.offset += 8
          break
        case 5:
          this.offset += 4
          break
        case 2: {
          const length = this.varint()
          if (this.offset + length > this.buf.length) throw new Error('field past the end')
          yield {number, bytes: this.buf.subarray(this.offset, this.offset + length)}
          this.offset += length
          break
        }
        default:
          throw new Error(`wire type ${key % 8} is not used by ONNX`)
      }
    }
  }
}

function message(bytes: Uint8Array | undefined, number: number): Uint8Array[] {
  if (!bytes) return []
  return [...new Reader(bytes).fields()].filter((f) => f.number === number && f.bytes).map((f) => f.bytes!)
}

function text(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('utf8')
}

/** TypeProto.Tensor → dtype and shape, when the element type can be fed. */
function tensorType(tensor: Uint8Array): {dtype: Dtype; shape: Dim[]} | undefined {
  const fields = [...new Reader(tensor).fields()]
  const dtype = ELEM_TYPES[fields.find((f) => f.number === 1)?.value ?? 0]
  if (!dtype) return undefined
  const shape: Dim[] = []
  for (const dim of message(fields.find((f) => f.number === 2)?.bytes, 1)) {
    const parts = [...new Reader(dim).fields()]
    const value = parts.find((f) => f.number === 1)?.value
    const param = parts.find((f) => f.number === 2)?.bytes
    shape.push(value !== undefined ? value : param ? text(param) : '')
  }
  return {dtype, shape}
}

/** An optional(tensor(T)) TypeProto (field 9 holding field 1 tensor_type) → its tensor type. */
function optionalTensor(type: Uint8Array): {dtype: Dtype; shape: Dim[]} | undefined {
  const [elem] = message(message(type, 9)[0], 1)
  const [tensor] = message(elem, 1)
  return tensor ? tensorType(tensor) : undefined
}

/** Inputs declared optional(tensor) in the model file, by name, with their element type and shape. */
export async function optionalTensorInputs(path: string): Promise<Map<string, {dtype: Dtype; shape: Dim[]}>> {
  const found = new Map<string, {dtype: Dtype; shape: Dim[]}>()
  try {
    const model = new Uint8Array(await readFile(path))
    const [graph] = message(model, 7)
    for (const input of message(graph, 11)) {
      const fields = [...new Reader(input).fields()]
      const name = fields.find((f) => f.number === 1)?.bytes
      const type = fields.find((f) => f.number === 2)?.bytes
      const tensor = type ? optionalTensor(type) : undefined
      if (name && tensor) found.set(text(name), tensor)
    }
  } catch {
    // Not a protobuf ONNX file (an .ort flatbuffer) or a damaged one: the inputs stay unservable, as onnxruntime says.
  }
  return found
}
