import {resolve} from 'node:path'

import {Args, Flags} from '@oclif/core'

import {AUTH_MODES} from '../auth/config.js'
import {BaseCommand} from '../base-command.js'
import {UsageError} from '../errors.js'
import {
  type DeployOptions,
  type RolloutPlan,
  type RolloutResult,
  deploy,
  dryRun,
  waitForOutcome,
} from '../rollout/deploy.js'
import {renderPlan, renderStatus} from '../rollout/render.js'
import type {Outcome, Stage} from '../rollout/types.js'
import {parseKeyValues} from '../system/key-values.js'

export default class Deploy extends BaseCommand {
  static override summary = 'Roll a release out on the local gateway: in full, as a shadow, or as a canary.'
  static override description = `The gateway (started on first use) answers on the same routes as "mlops serve" and names the version in x-model-version. --shadow: stable answers, the candidate sees a copy of the traffic and its answers are compared. --canary N: N% of requests are answered by the candidate. The artifact is verified first. With --auto the steps (deploy.steps) advance by themselves while the analysis passes and roll back when it fails; --wait blocks until the rollout ends.

Exit codes: 0 deployed (with --wait: promoted), 1 failed (with --wait: rolled back, naming the gate), 2 usage or configuration error, 3 another command holds the deploy lock, or --timeout passed while still rolling out.`

  static override examples = [
    '<%= config.bin %> deploy 1.0.0 --full --port 8080',
    '<%= config.bin %> deploy 1.1.0 --shadow',
    '<%= config.bin %> deploy 1.1.0 --canary 5',
    '<%= config.bin %> deploy 1.1.0 --canary 5 --auto --wait --json',
  ]

  static override args = {
    ref: Args.string({
      description: 'Artifact: a version, name@version, digest or .tar path.',
      required: true,
      ignoreStdin: true,
    }),
  }

  static override flags = {
    full: Flags.boolean({
      description: 'Serve all traffic with this release (the first release, or a direct replacement).',
      exclusive: ['shadow', 'canary'],
    }),
    shadow: Flags.boolean({
      description: 'Mirror traffic to this release and compare its answers; stable keeps answering.',
      exclusive: ['full', 'canary'],
    }),
    canary: Flags.integer({
      description: 'Send this percentage of requests to the release (default: the first of deploy.steps).',
      min: 1,
      max: 100,
      exclusive: ['full', 'shadow'],
    }),
    auto: Flags.boolean({
      description: 'Advance through deploy.steps while the analysis passes; roll back when it fails.',
    }),
    wait: Flags.boolean({description: 'Block until the rollout ends: exit 0 promoted, 1 rolled back.'}),
    timeout: Flags.integer({
      description: 'With --wait: give up waiting after this many seconds (exit 3; the rollout goes on).',
      min: 1,
      dependsOn: ['wait'],
    }),
    'dry-run': Flags.boolean({
      description: 'Print the change this would make, and what runs now; start, lock and write nothing.',
      exclusive: ['wait'],
    }),
    port: Flags.integer({
      description: 'Port of the gateway for client traffic. Default: deploy.port or 8080.',
      min: 1,
      max: 65535,
    }),
    auth: Flags.option({
      description: "Who may call the gateway's client port. Default: serving.auth or none.",
      options: AUTH_MODES,
      env: 'MLOPS_AUTH',
    })(),
    'tls-cert': Flags.string({
      description:
        "HTTPS on the gateway's client port with this PEM certificate; with --tls-key. Default: serving.tls.",
      dependsOn: ['tls-key'],
    }),
    'tls-key': Flags.string({description: 'The PEM private key of --tls-cert.', dependsOn: ['tls-cert']}),
    actor: Flags.string({description: 'Who deploys, for the ledger. Default: the git user.', env: 'MLOPS_ACTOR'}),
    'test-report': Flags.string({
      description:
        'The "mlops test --json" report of this artifact (required when deploy.analysis.gates.test.required).',
    }),
    model: Flags.string({description: 'Deploy a bare .onnx file as version REF (development).', hidden: true}),
    env: Flags.string({
      description: "KEY=VALUE for this version's model server (repeatable).",
      hidden: true,
      multiple: true,
    }),
  }

  async run(): Promise<(RolloutResult & {outcome?: Outcome}) | RolloutPlan> {
    const {args, flags} = await this.parse(Deploy)
    const stage: Stage | undefined = flags.full
      ? 'full'
      : flags.shadow
        ? 'shadow'
        : flags.canary === undefined
          ? undefined
          : 'canary'
    if (!stage)
      throw new UsageError('STAGE_REQUIRED', 'say how to deploy: --full, --shadow or --canary N', {
        hint: `First release: "mlops deploy ${args.ref} --full"; next ones: "--shadow" or "--canary 5".`,
      })
    const options: DeployOptions = {
      dir: flags.dir,
      ref: args.ref,
      stage,
      weight: flags.canary,
      auto: flags.auto,
      port: flags.port,
      authMode: flags.auth,
      tls:
        flags['tls-cert'] && flags['tls-key']
          ? {cert: resolve(flags['tls-cert']), key: resolve(flags['tls-key'])}
          : undefined,
      actor: flags.actor,
      model: flags.model,
      env: flags.env && parseKeyValues('env', flags.env, 'MLOPS_FAULT_ERROR_RATE=0.2'),
      testReport: flags['test-report'],
    }
    if (flags['dry-run']) {
      const plan = await dryRun({action: 'deploy', options})
      this.say(renderPlan(plan))
      return plan
    }
    const result = await deploy(options)
    this.say(
      result.changed
        ? `deployed ${result.version}: ${result.entry?.reason}`
        : `${result.version} already serves all traffic; nothing changed`,
    )
    this.say(renderStatus(result.status))
    if (!flags.wait || !result.status.candidate) {
      if (result.status.candidate) this.say(`\nnext: mlops status --watch | mlops promote | mlops rollback`)
      return result
    }
    if (!flags.auto && !this.jsonEnabled())
      process.stderr.write(
        'waiting for "mlops promote" or "mlops rollback" (without --auto nothing advances by itself)\n',
      )
    let last = ''
    const outcome = await waitForOutcome({
      dir: flags.dir,
      version: result.version,
      revision: result.status.revision,
      timeoutMs: flags.timeout === undefined ? undefined : flags.timeout * 1000,
      onUpdate: (status) => {
        const line = `${status.phase}: ${status.reason}`
        if (line !== last && !this.jsonEnabled()) process.stderr.write(`${line}\n`)
        last = line
      },
    })
    this.say(`promoted ${result.version}: ${outcome.reason}`)
    return {...result, outcome}
  }
}
