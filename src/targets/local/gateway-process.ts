// The detached gateway process, started by `mlops deploy` through main.ts.
import {parseArgs} from 'node:util'
import {unlinkSync} from 'node:fs'

import {loadConfig} from '../../config/load.js'
import {deployPaths, readState} from '../../rollout/state.js'
import {serveSettings} from '../../serve/config.js'
import {Controller} from './controller.js'
import {stopOrphans} from './control.js'
import {Gateway, badControlRequest} from './gateway.js'
import {gatewayWorkers} from '../../rollout/config.js'
import {serveInvocation} from './invocation.js'
import type {ServerSpec} from '../types.js'

export async function runGateway(): Promise<void> {
  const {values} = parseArgs({
    options: {
      dir: {type: 'string'},
      port: {type: 'string'},
      host: {type: 'string'},
      'tls-cert': {type: 'string'},
      'tls-key': {type: 'string'},
      'tls-client-ca': {type: 'string'},
      'tls-upstream-ca': {type: 'string'},
    },
  })
  const projectDir = values.dir ?? process.cwd()
  const paths = deployPaths(projectDir)
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`)

  await stopOrphans(paths)
  const state = await readState(paths)
  const cert = values['tls-cert']
  const key = values['tls-key']
  const clientCa = values['tls-client-ca']
  const upstreamCa = values['tls-upstream-ca']
  const tls =
    cert && key ? {cert, key, ...(clientCa ? {clientCa} : {}), ...(upstreamCa ? {upstreamCa} : {})} : undefined
  // The client port takes the model server's limits: the same bodies, and as many connections.
  const config = (await loadConfig(projectDir).catch(() => undefined))?.config
  const serving = serveSettings(config?.serving)
  const gateway = new Gateway({
    projectDir,
    paths,
    cli: serveInvocation(),
    log,
    tls,
    maxBodyBytes: serving.maxBodyBytes,
    maxConnections: serving.maxConnections,
    workers: gatewayWorkers(config?.deploy),
  })
  const controller = new Controller({gateway, paths, log})

  let closing = false
  async function shutdown(why: string): Promise<void> {
    if (closing) return
    closing = true
    log(`stopping: ${why}`)
    controller.stop()
    await gateway.close()
    try {
      unlinkSync(paths.gateway)
    } catch {
      // already gone
    }
    // Pools and timers of retired servers may linger; the gateway is done.
    process.exit(0)
  }

  gateway.onControl('POST /v1/prepare', async (body) => {
    const servers = (body as {servers?: unknown} | undefined)?.servers
    const valid = (spec: unknown) => typeof (spec as ServerSpec | null)?.release?.version === 'string'
    if (!Array.isArray(servers) || !servers.every(valid))
      throw badControlRequest('POST /v1/prepare takes {"servers": [{"release": {"version": …}, …}]}')
    await gateway.prepare(servers as ServerSpec[])
    return {ok: true}
  })
  gateway.onControl('POST /v1/reconcile', async () => {
    const desired = await readState(paths)
    if (desired) await gateway.apply(desired)
    return {revision: gateway.revision}
  })
  gateway.onControl('POST /v1/shutdown', async () => {
    setImmediate(() => void shutdown('asked by mlops down'))
    return {ok: true}
  })

  const info = await gateway.listen(Number(values.port ?? state?.port ?? 8080), values.host)
  log(`gateway pid ${info.pid} on 127.0.0.1:${info.port}, control on 127.0.0.1:${info.controlPort}`)
  process.once('SIGTERM', () => void shutdown('SIGTERM'))
  process.once('SIGINT', () => void shutdown('SIGINT'))
  if (state)
    await gateway
      .apply(state)
      .catch((error: Error) => log(`could not apply revision ${state.revision}: ${error.message}`))
  controller.start()
}
