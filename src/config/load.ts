// Reads mlops.yaml in two passes: the JSON Schema (ajv, all errors at once), then semantic checks; errors name the field path.
import {readFileSync, readdirSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'

import {Ajv, type ErrorObject, type ValidateFunction} from 'ajv'
import {closest} from 'fastest-levenshtein'
import semver from 'semver'
import {LineCounter, parseDocument} from 'yaml'

import {checkChecksConfig} from '../checks/config.js'
import {ConfigError, type ConfigIssue, UsageError} from '../errors.js'
import {checkMonitorConfig} from '../monitor/config.js'
import {checkDeployConfig} from '../rollout/config.js'
import {checkAuthConfig} from '../auth/config.js'
import {schemasDir} from '../paths.js'
import type {MlopsConfig} from './types.js'

export const CONFIG_FILE = 'mlops.yaml'

export interface LoadedConfig {
  config: MlopsConfig
  /** Absolute path of mlops.yaml. */
  file: string
  /** The project directory: paths in the config are relative to it. */
  dir: string
}

type SemanticCheck = (config: MlopsConfig) => ConfigIssue[]

// Every area's checks run on every load, so any command catches a bad section, not only the command that reads it.
const semanticChecks: SemanticCheck[] = [
  checkVersion,
  checkMonitorConfig,
  checkDeployConfig,
  checkChecksConfig,
  checkAuthConfig,
]

let validator: ValidateFunction | undefined

function compile(): ValidateFunction {
  if (validator) return validator
  const ajv = new Ajv({allErrors: true, strict: false, verbose: true})
  const dir = join(schemasDir, 'config')
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.schema.json') && f !== 'mlops.schema.json')) {
    ajv.addSchema(JSON.parse(readFileSync(join(dir, file), 'utf8')) as object)
  }
  validator = ajv.compile(JSON.parse(readFileSync(join(dir, 'mlops.schema.json'), 'utf8')))
  return validator
}

export function findConfigFile(dir: string): string {
  return resolve(dir, CONFIG_FILE)
}

export async function loadConfig(dir: string): Promise<LoadedConfig> {
  const file = findConfigFile(dir)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UsageError('CONFIG_NOT_FOUND', `No ${CONFIG_FILE} in ${resolve(dir)}`, {
        hint: `Run "mlops init ${dir === '.' ? '' : dir} --model PATH/TO/model.onnx" to create a project, or pass --dir to point at one.`.replace(
          '  ',
          ' ',
        ),
      })
    }
    throw error
  }
  return {config: parseConfig(text, file), file, dir: dirname(file)}
}

export function parseConfig(text: string, file = CONFIG_FILE): MlopsConfig {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, {lineCounter, uniqueKeys: true, prettyErrors: true})
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0])
        // The parser's first line ends "at line L, column C:" (its excerpt follows on the next lines): the path says it already.
        return {
          path: `line ${pos.line}, column ${pos.col}`,
          message: e.message.split('\n')[0].replace(/ at line \d+, column \d+:$/, ''),
        }
      }),
      `Fix the YAML syntax in ${file}.`,
    )
  }
  const value = doc.toJS({maxAliasCount: 100}) as unknown
  return validateConfig(value, file)
}

export function validateConfig(value: unknown, file = CONFIG_FILE): MlopsConfig {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(file, [{path: '', message: 'must be a mapping of sections (name, model, pipeline, …)'}])
  }
  const validate = compile()
  if (!validate(value)) throw new ConfigError(file, dedupe((validate.errors ?? []).map(toIssue)))
  const config = value as MlopsConfig
  const issues = semanticChecks.flatMap((check) => check(config))
  if (issues.length > 0) throw new ConfigError(file, issues)
  return config
}

function checkVersion(config: MlopsConfig): ConfigIssue[] {
  if (config.version !== undefined && !semver.valid(config.version))
    return [{path: 'version', message: `"${config.version}" is not a semantic version (e.g. 1.2.0)`}]
  return []
}

/** `/deploy/canary/steps/2` → `deploy.canary.steps[2]` */
export function toFieldPath(pointer: string): string {
  let out = ''
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replaceAll('~1', '/').replaceAll('~0', '~')
    out += /^\d+$/.test(key) ? `[${key}]` : out ? `.${key}` : key
  }
  return out
}

function toIssue(error: ErrorObject): ConfigIssue {
  const path = toFieldPath(error.instancePath)
  const params = error.params as Record<string, unknown>
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty)
      const allowed = Object.keys((error.parentSchema as {properties?: object})?.properties ?? {})
      const suggestion = allowed.length > 0 ? closest(key, allowed) : undefined
      const near =
        suggestion && distanceOk(key, suggestion)
          ? `; did you mean "${suggestion}"?`
          : allowed.length > 0
            ? `; allowed keys: ${allowed.join(', ')}`
            : ''
      return {path: path ? `${path}.${key}` : key, message: `unknown key${near}`}
    }
    case 'required':
      return {
        path: path ? `${path}.${String(params.missingProperty)}` : String(params.missingProperty),
        message: 'is required',
      }
    case 'enum':
      return {
        path,
        message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
      }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const parent = error.parentSchema as {minimum?: number; maximum?: number}
      if (parent.minimum !== undefined && parent.maximum !== undefined)
        return {path, message: `must be between ${parent.minimum} and ${parent.maximum}`}
      return {path, message: error.message ?? 'is out of range'}
    }
    case 'pattern':
      return {
        path,
        message: `${error.message ?? 'does not match the pattern'}${(error.parentSchema as {description?: string})?.description ? ` (${(error.parentSchema as {description?: string}).description})` : ''}`,
      }
    default:
      return {path, message: error.message ?? 'is invalid'}
  }
}

function distanceOk(a: string, b: string): boolean {
  let same = 0
  for (const ch of new Set(a)) if (b.includes(ch)) same++
  return same >= Math.min(a.length, b.length) / 2
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>()
  return issues.filter((i) => {
    const key = `${i.path}\u0000${i.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
