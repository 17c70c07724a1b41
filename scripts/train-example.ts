// Trains the bundled credit-risk example and writes its model, data, golden cases and mlops.yaml (deterministic per seed).
import {mkdir, writeFile} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'
import {parseArgs} from 'node:util'

import {DEFAULT_OPTIONS, buildExample} from './lib/example.js'

const USAGE = 'usage: npx tsx scripts/train-example.ts [--out DIR] [--seed N] [--epochs N]'

function usageError(message: string): never {
  console.error(`${message}\n${USAGE}`)
  process.exit(2)
}

function integer(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) usageError(`--${flag} must be a non-negative integer, got "${value}"`)
  return n
}

function parseFlags(): {out?: string; seed?: string; epochs?: string} {
  try {
    return parseArgs({options: {out: {type: 'string'}, seed: {type: 'string'}, epochs: {type: 'string'}}}).values
  } catch (error) {
    return usageError((error as Error).message)
  }
}

const flags = parseFlags()
const out = resolve(flags.out ?? 'examples/credit-risk')
const options = {
  seed: integer('seed', flags.seed, DEFAULT_OPTIONS.seed),
  epochs: integer('epochs', flags.epochs, DEFAULT_OPTIONS.epochs),
}

const {files, metrics} = buildExample(options)
for (const [path, content] of files) {
  await mkdir(dirname(join(out, path)), {recursive: true})
  await writeFile(join(out, path), content)
}
console.log(`wrote ${files.size} files to ${out} (seed ${options.seed}, ${options.epochs} epochs)`)
console.log(
  `held-out AUC ${metrics.holdoutAuc.toFixed(3)}, accuracy ${metrics.holdoutAccuracy.toFixed(3)} at threshold 0.5; training AUC ${metrics.trainingAuc.toFixed(3)}; default rate ${(100 * metrics.defaultRate).toFixed(1)}%`,
)
