// POST /v1/predict as multipart/form-data: one record from a form, its files (images) as base64 and its text fields as
// JSON values where they are JSON (42, true, null) and as text otherwise. The body is already whole and bounded.
import {Busboy, type BusboyInstance} from '@fastify/busboy'

import type {InputRecord} from '../pipeline/types.js'
import {badRequest} from './errors.js'

const LIMITS = {fields: 1000, files: 16, parts: 1016, fieldSize: 1024 * 1024}

export function isMultipart(contentType: string | undefined): boolean {
  return contentType?.split(';')[0].trim().toLowerCase() === 'multipart/form-data'
}

function fieldValue(text: string): unknown {
  try {
    const value = JSON.parse(text) as unknown
    return value === null || typeof value !== 'object' ? value : text
  } catch {
    return text
  }
}

export function multipartRecord(body: Buffer, contentType: string): Promise<InputRecord> {
  return new Promise((resolve, reject) => {
    const record: InputRecord = {}
    const refuse = (message: string) => reject(badRequest('BAD_MULTIPART', message))
    let parser: BusboyInstance
    try {
      parser = new Busboy({headers: {'content-type': contentType}, limits: LIMITS})
    } catch (error) {
      refuse(`the multipart form cannot be read: ${(error as Error).message}`)
      return
    }
    const pending: Promise<void>[] = []
    parser.on('field', (name: string, value: string, _nameCut: boolean, valueCut: boolean) => {
      if (valueCut) refuse(`field "${name}" is over ${LIMITS.fieldSize} bytes; send large values as files`)
      record[name] = fieldValue(value)
    })
    parser.on('file', (name: string, stream: NodeJS.ReadableStream) => {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      pending.push(
        new Promise((done) =>
          stream.on('end', () => {
            record[name] = Buffer.concat(chunks).toString('base64')
            done()
          }),
        ),
      )
    })
    for (const limit of ['partsLimit', 'filesLimit', 'fieldsLimit'])
      parser.on(limit, () =>
        refuse(`the form has too many parts: at most ${LIMITS.files} files, ${LIMITS.fields} fields`),
      )
    parser.on('error', (error: Error) => refuse(`the multipart form cannot be read: ${error.message}`))
    parser.on('finish', () => void Promise.all(pending).then(() => resolve(record)))
    parser.end(body)
  })
}
