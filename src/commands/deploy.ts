import {resolve} from 'node:path'

import {Args, Flags} from '@oclif/core'

import {AUTH_MODES} from '../auth/config.js'
import {BaseCommand} from '../base-command.js'
import {newestVersion} from '../artifact/inspect.js'
import {UsageError} from '../errors.js'
import {durationFlag} from '../flags.js'
import {
  type DeployOptions,
  type RolloutPlan,
  type RolloutResult,
  deploy,
  dryRun,
  history,
  waitForOutcome,
} from '../rollout/deploy.js'
import {renderPlan, renderRollout, renderStatus} from '../rollout/render.js'
import {latestRollout} from '../rollout/watch.js'
import type {Outcome, Stage} from '../rollout/types.js'
import {parseKeyValues} from '../system/key-values.js'
import {MARK} from '../system/terminal.js'
import {clusterDeployFlags, forceConflictsFlag, targetChoice, targetFlags} from '../target-flags.js'
import {renderManifests} from '../targets/kubernetes/render.js'

export default class Deploy extends BaseCommand {
  static override summary = 'Roll a release out on the local gateway: in full, as a shadow, or as a canary.'
  static override description = `The gateway (started on first use) answers on the same routes as "mlops serve" and names the version in x-model-version. --shadow: stable answers, the candidate sees a copy of the traffic and its answers are compared. --canary N: N% of requests are answered by the candidate. The artifact is verified first. With --auto the steps (deploy.steps) advance by themselves while the analysis passes and roll back when it fails; --wait blocks until the rollout ends.

Exit codes: 0 deployed (with --wait: promoted), 1 failed (with --wait: rolled back, naming the gate), 2 usage or configuration error, 3 another command holds the deploy lock, or --timeout passed while still rolling out.`

  static override examples = [
    '<%= config.bin %> deploy --full',
    '<%= config.bin %> deploy 1.0.0 --full --port 8080',
    '<%= config.bin %> deploy 1.1.0 --shadow',
    '<%= config.bin %> deploy 1.1.0 --canary 5',
    '<%= config.bin %> deploy 1.1.0 --canary 5 --auto --wait --json',
  ]

  static override args = {
    ref: Args.string({
      description: 'Artifact: a version, name@version, digest or .tar path. Default: the newest packaged version.',
      ignoreStdin: true,
    }),
  }

  static override flags = {
    ...targetFlags,
    ...clusterDeployFlags,
    ...forceConflictsFlag,
    output: Flags.option({
      options: ['yaml'] as const,
      description: 'Kubernetes: write the manifests of the release to stdout instead of applying them (GitOps).',
      exclusive: ['wait', 'dry-run'],
    })(),
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
    timeout: durationFlag({
      description: 'With --wait: give up waiting after this long, e.g. 20s or 5m (exit 3; the rollout goes on).',
      min: 1000,
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
        hint: `First release: "mlops deploy ${args.ref ?? 'VERSION'} --full"; next ones: "--shadow" or "--canary 5".`,
      })
    if (flags.model && !args.ref)
      throw new UsageError('VERSION_REQUIRED', '--model needs REF: the version to call the model', {
        hint: `Run "mlops deploy 1.0.0 --model ${flags.model} --full".`,
      })
    const options: DeployOptions = {
      dir: flags.dir,
      ref: args.ref ?? (await newestVersion(flags.dir)),
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
      where: targetChoice(flags),
    }
    if (flags.output) {
      const plan = await dryRun({action: 'deploy', options})
      if (!this.jsonEnabled()) process.stdout.write(renderManifests(plan.manifests ?? []))
      return plan
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
    this.say(renderStatus(result.status, this.colors))
    if (!flags.wait || !result.status.candidate) {
      if (result.status.candidate) this.say(`\nnext: mlops status --watch | mlops promote | mlops rollback`)
      return result
    }
    if (!flags.auto && !this.jsonEnabled())
      process.stderr.write(
        'waiting for "mlops promote" or "mlops rollback" (without --auto nothing advances by itself)\n',
      )
    let last = ''
    const waiting = waitForOutcome({
      dir: flags.dir,
      where: options.where,
      version: result.version,
      revision: result.status.revision,
      timeoutMs: flags.timeout,
      onUpdate: (status) => {
        const line = `${status.phase}: ${status.reason}`
        if (line !== last && !this.jsonEnabled()) process.stderr.write(`${line}\n`)
        last = line
      },
    })
    // Promoted or rolled back, the steps and the gates that decided go out before the verdict.
    const outcome = await waiting.finally(() => this.sayRollout(flags.dir))
    this.say(`${this.colors.green(MARK.pass)} promoted ${result.version}: ${outcome.reason}`)
    return {...result, outcome}
  }

  private async sayRollout(dir: string): Promise<void> {
    if (this.jsonEnabled()) return
    const rollout = latestRollout((await history({dir})).entries)
    if (rollout.length > 0) this.say(`\n${renderRollout(rollout, this.colors)}\n`)
  }
}
