// Checks a command's --json output against its published result schema (schemas/results/<command>.schema.json).
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {Ajv} from 'ajv'

import {schemasDir} from '../../src/paths.js'

const ajv = new Ajv({allErrors: true, strict: false})

export function assertMatchesSchema(value: unknown, name: string): void {
  const schema = JSON.parse(readFileSync(join(schemasDir, 'results', `${name}.schema.json`), 'utf8')) as object
  const validate = ajv.getSchema(name) ?? (ajv.addSchema(schema, name), ajv.getSchema(name)!)
  const ok = validate(value)
  assert.ok(
    ok,
    `--json output does not match schemas/results/${name}.schema.json: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value, null, 2).slice(0, 2000)}`,
  )
}
