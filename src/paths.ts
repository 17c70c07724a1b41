// Where the tool's own files are (templates, schemas), whether it runs from dist/ or from src/ through tsx.
import {existsSync, readFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('mlops: cannot find its package root')
    dir = parent
  }
  return dir
}

export const packageRoot = findPackageRoot()
export const templatesDir = join(packageRoot, 'templates')
export const schemasDir = join(packageRoot, 'schemas')

let version: string | undefined
/** This mlops's version, from its package.json (read once). */
export function toolVersion(): string {
  version ??= (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {version: string}).version
  return version
}
