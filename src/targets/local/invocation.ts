// How to run this same CLI as a child process, from the build (bin/run.js) or from the sources through tsx (development, tests).
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {packageRoot} from '../../paths.js'

export interface Invocation {
  command: string
  args: string[]
}

const fromSources = import.meta.url.endsWith('.ts')

/** `mlops …` as argv: bin/run.js, or bin/dev.js (which registers tsx itself) when running from src/. */
export function cliInvocation(): Invocation {
  return {command: process.execPath, args: [join(packageRoot, 'bin', fromSources ? 'dev.js' : 'run.js')]}
}

/** The gateway's entry point (main.ts next to this file), under tsx when running from src/. */
export function gatewayInvocation(): Invocation {
  const entry = fileURLToPath(new URL(fromSources ? './main.ts' : './main.js', import.meta.url))
  return {command: process.execPath, args: fromSources ? ['--import', import.meta.resolve('tsx'), entry] : [entry]}
}
