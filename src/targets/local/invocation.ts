// How the gateway and its model servers are started as child processes: from the build, or from the sources through tsx.
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {packageRoot} from '../../paths.js'

export interface Invocation {
  command: string
  args: string[]
}

const fromSources = import.meta.url.endsWith('.ts')

function sibling(name: string): string {
  return fileURLToPath(new URL(`./${name}.${fromSources ? 'ts' : 'js'}`, import.meta.url))
}

function node(entry: string): Invocation {
  return {command: process.execPath, args: fromSources ? ['--import', import.meta.resolve('tsx'), entry] : [entry]}
}

/** `mlops serve` (append its arguments): the installed CLI, or its command class under tsx when running from src/. */
export function serveInvocation(): Invocation {
  return fromSources
    ? node(sibling('serve-main'))
    : {command: process.execPath, args: [join(packageRoot, 'bin', 'run.js'), 'serve']}
}

/** The gateway's entry point (main.ts next to this file). */
export function gatewayInvocation(): Invocation {
  return node(sibling('main'))
}
