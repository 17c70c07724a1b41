// The local target: one detached gateway process per project, found through .mlops/deploy/gateway.json.
import type {TlsSettings} from '../../http/tls.js'
import type {DeployPaths} from '../../rollout/state.js'
import type {Measurement} from '../../rollout/types.js'
import type {DeployTarget, ServerSpec, TargetRuntime} from '../types.js'
import {ensureGateway, findGateway, stopGateway, strayDescription, strayGateways} from './control.js'

export class LocalTarget implements DeployTarget {
  constructor(
    private readonly paths: DeployPaths,
    private readonly projectDir: string,
  ) {}

  async prepare(servers: ServerSpec[], port: number, tls?: TlsSettings): Promise<void> {
    const gateway = await ensureGateway(this.paths, this.projectDir, port, tls)
    if (servers.length > 0) await gateway.prepare(servers)
  }

  async reconcile(): Promise<void> {
    await (await findGateway(this.paths))?.reconcile()
  }

  async observe(): Promise<{measurement: Measurement; runtime?: TargetRuntime}> {
    const gateway = await findGateway(this.paths)
    if (!gateway) {
      const strays = strayGateways(this.projectDir)
      return {
        measurement: {
          error:
            strays.length > 0
              ? `${strayDescription(strays, this.paths)}; run "mlops down" to stop it`
              : 'the gateway is not running',
        },
      }
    }
    try {
      const status = await gateway.status()
      return {
        measurement: status.measurement,
        runtime: {
          pid: status.pid,
          port: status.port,
          startedAt: status.startedAt,
          revision: status.revision,
          servers: status.servers,
        },
      }
    } catch (error) {
      return {
        measurement: {error: `the gateway (pid ${gateway.info.pid}) does not answer: ${(error as Error).message}`},
      }
    }
  }

  stop(): Promise<{stopped: boolean; pid?: number}> {
    return stopGateway(this.paths, this.projectDir)
  }
}
