import {Args, Errors, Flags} from '@oclif/core'

import {AUTH_MODES} from '../auth/config.js'
import {BaseCommand} from '../base-command.js'
import {durationFlag} from '../flags.js'
import {tlsFiles} from '../http/tls.js'
import type {ServeReady} from '../serve/child.js'
import {isServeWorker, serve} from '../serve/cluster.js'

export default class Serve extends BaseCommand {
  static override summary = 'Serve an artifact over HTTP: /v1/predict, the KServe/Triton v2 inference API and /metrics.'
  static override description = `Verifies the artifact, loads the model, warms it up (with the artifact's golden cases when it has them), then prints one "ready:" line (one JSON line with --json) and serves until SIGTERM or SIGINT, when it stops accepting, finishes in-flight requests and exits 0.

Settings come from the serving section of mlops.yaml. Fault injection for tests: MLOPS_FAULT_LATENCY_MS, MLOPS_FAULT_ERROR_RATE, MLOPS_FAULT_CRASH_ON, MLOPS_FAULT_WRONG.

Exit codes: 0 stopped cleanly, 1 the artifact fails verification or the model cannot be served, 2 usage or configuration error (e.g. the port is in use).`

  static override examples = [
    '<%= config.bin %> serve',
    '<%= config.bin %> serve 1.2.0 --port 9000',
    '<%= config.bin %> serve credit-risk@1.2.0 --port 0 --json',
  ]

  static override args = {
    // ignoreStdin: without it oclif waits on stdin for a missing argument.
    ref: Args.string({
      description: 'Artifact: a version, name@version, digest or .tar path. Default: the newest in the project store.',
      ignoreStdin: true,
    }),
  }

  static override flags = {
    port: Flags.integer({
      char: 'p',
      description: 'Port to listen on; 0 picks a free one. Default: serving.port or 8080.',
      min: 0,
      max: 65535,
      env: 'MLOPS_PORT',
    }),
    host: Flags.string({description: 'Address to listen on. Default: serving.host or 127.0.0.1.', env: 'MLOPS_HOST'}),
    'drain-timeout': durationFlag({
      description: 'How long in-flight requests may take to finish on SIGTERM, e.g. 30s.',
      default: 30_000,
    }),
    model: Flags.string({
      description: 'Serve a bare .onnx file without packaging it (for development).',
      hidden: true,
      exclusive: ['ref'],
    }),
    'model-version': Flags.string({
      description: 'The version a bare --model answers as (default 0.0.0).',
      hidden: true,
      dependsOn: ['model'],
    }),
    auth: Flags.option({
      description:
        'Who may call: API keys from "mlops keys create", JWTs from serving.auth.jwt, either, or anyone. Default: serving.auth or none.',
      options: AUTH_MODES,
      env: 'MLOPS_AUTH',
    })(),
    'tls-cert': Flags.string({
      description: 'Serve HTTPS with this PEM certificate (chain); with --tls-key. Default: serving.tls.cert.',
      dependsOn: ['tls-key'],
      env: 'MLOPS_TLS_CERT',
    }),
    'tls-key': Flags.string({
      description: 'The PEM private key of --tls-cert. Default: serving.tls.key.',
      dependsOn: ['tls-cert'],
      env: 'MLOPS_TLS_KEY',
    }),
    'tls-dir': Flags.string({
      description:
        'Serve HTTPS when this folder holds tls.crt and tls.key (a Kubernetes TLS Secret mounted as a volume), plain HTTP when it holds neither. The image of "mlops build" sets /etc/mlops/tls.',
      env: 'MLOPS_TLS_DIR',
    }),
    'plain-http': Flags.boolean({
      description: 'Serve plain HTTP whatever serving.tls says (the deploy gateway in front terminates TLS).',
      hidden: true,
    }),
    'trust-caller-header': Flags.boolean({
      description: 'Log the caller named in x-mlops-caller (set by the deploy gateway, which authenticates clients).',
      hidden: true,
    }),
    workers: Flags.integer({
      description:
        'Model-server processes on the one port, each with its own session. Default: serving.workers, or one per core.',
      min: 1,
      max: 256,
      env: 'MLOPS_SERVE_WORKERS',
    }),
    'thread-spinning': Flags.boolean({
      description:
        "Let onnxruntime's idle threads spin between runs (lower latency, a core kept busy); --no-thread-spinning where processes share the machine, as the deploy gateway's model servers do.",
      default: true,
      allowNo: true,
    }),
  }

  protected override async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    // A worker of several that cannot start has told its primary, which prints the error once for all of them.
    if (isServeWorker()) throw new Errors.ExitError((process.exitCode = error.exitCode ?? 1))
    return super.catch(error)
  }

  async run(): Promise<ServeReady | undefined> {
    const {args, flags} = await this.parse(Serve)
    // --plain-http wins over MLOPS_TLS_* too: the gateway's model servers inherit its environment.
    const tls = flags['plain-http']
      ? undefined
      : tlsFiles({cert: flags['tls-cert'], key: flags['tls-key'], dir: flags['tls-dir']})
    const overrides = {
      ...(flags.port === undefined ? {} : {port: flags.port}),
      ...(flags.host === undefined ? {} : {host: flags.host}),
      ...(flags['trust-caller-header'] ? {trustCallerHeader: true} : {}),
      // From the environment only (owner-readable), never the command line (any local user's ps shows that).
      ...(flags['trust-caller-header'] && process.env.MLOPS_GATEWAY_TOKEN
        ? {gatewayToken: process.env.MLOPS_GATEWAY_TOKEN}
        : {}),
      ...(tls ? {tls} : {}),
    }
    const serving = await serve({
      dir: flags.dir,
      ref: args.ref,
      modelPath: flags.model,
      modelVersion: flags['model-version'],
      settings: overrides,
      spinning: flags['thread-spinning'],
      authMode: flags.auth,
      plainHttp: flags['plain-http'],
      workers: flags.workers,
    })
    const {name, version, digest} = serving.identity
    // On stderr in --json mode too (oclif's warn is silent there): a model server's log is where they are read.
    for (const warning of serving.warnings) if (!serving.worker) process.stderr.write(`Warning: ${warning}\n`)
    const ready: ServeReady = {
      url: serving.url,
      port: serving.port,
      pid: process.pid,
      name,
      version,
      ...(digest ? {digest} : {}),
      workers: serving.workers,
    }
    // The ready line goes out now, while serving goes on; so --json prints it as one line rather than returning it at exit.
    // A worker of several says nothing: its primary speaks for all.
    const workers = serving.workers > 1 ? `, ${serving.workers} workers` : ''
    if (!serving.worker && this.jsonEnabled()) process.stdout.write(JSON.stringify(ready) + '\n')
    else if (!serving.worker)
      this.log(`ready: ${serving.url} (${name} ${version}${digest ? ` ${digest}` : ''}${workers})`)
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', () => resolve())
      process.once('SIGINT', () => resolve())
    })
    const drained = await serving.stop(flags['drain-timeout'])
    if (!drained) this.warn(`some requests were still running after ${flags['drain-timeout'] / 1000}s and were cut off`)
    return undefined
  }
}
