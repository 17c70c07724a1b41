// Runs the built CLI (bin/run.js) as a real child process, the way users and CI run it.
import {cp, mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {execa} from 'execa'

import {packageRoot} from '../../src/paths.js'

export const BIN = join(packageRoot, 'bin', 'run.js')
/** Third-party models copied into the repository (test/fixtures/models/SOURCES.md names each one's origin and license). */
export const MODELS_DIR = join(packageRoot, 'test', 'fixtures', 'models')

export interface CliResult {
  exitCode: number
  stdout: string
  stderr: string
  /** stdout parsed as JSON when it is JSON. */
  json?: unknown
}

export async function mlops(
  args: string[],
  options: {cwd?: string; env?: Record<string, string>; input?: string; timeoutMs?: number} = {},
): Promise<CliResult> {
  const result = await execa('node', [BIN, ...args], {
    cwd: options.cwd,
    env: {CI: 'true', ...options.env},
    input: options.input,
    reject: false,
    timeout: options.timeoutMs ?? 120_000,
  })
  const stdout = String(result.stdout)
  let json: unknown
  try {
    json = JSON.parse(stdout)
  } catch {
    json = undefined
  }
  return {exitCode: result.exitCode ?? -1, stdout, stderr: String(result.stderr), json}
}

export async function tempDir(prefix = 'mlops-test-'): Promise<{path: string; remove: () => Promise<void>}> {
  const path = await mkdtemp(join(tmpdir(), prefix))
  return {path, remove: () => rm(path, {recursive: true, force: true})}
}

/** A fresh copy of the bundled example in a temp folder (outside any git tree). */
export async function exampleProject(): Promise<{project: string; tmp: string; remove: () => Promise<void>}> {
  const {path, remove} = await tempDir('mlops-example-')
  const project = join(path, 'credit-risk')
  await cp(join(packageRoot, 'examples', 'credit-risk'), project, {recursive: true})
  return {project, tmp: path, remove}
}
