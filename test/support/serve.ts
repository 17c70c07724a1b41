// `mlops serve` of a project's newest artifact as a real child process on 127.0.0.1, stopped by its own handle.
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {createInterface} from 'node:readline'

import {BIN} from './cli.js'

export interface ServeProcess {
  url: string
  stop: () => Promise<void>
}

export async function startServe(args: string[], env: Record<string, string> = {}): Promise<ServeProcess> {
  const child = spawn('node', [BIN, 'serve', ...args, '--port', '0', '--json'], {
    env: {...process.env, CI: 'true', ...env},
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit')
  const [line] = (await Promise.race([
    once(createInterface({input: child.stdout}), 'line'),
    exited.then(() => ['']),
  ])) as [string]
  if (!line) throw new Error(`mlops serve ${args.join(' ')} exited before it was ready`)
  return {
    url: (JSON.parse(line) as {url: string}).url,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}
