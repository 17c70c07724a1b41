import {Args, Flags} from '@oclif/core'

import {type ShowResult, artifactOpenApiDocument, showArtifact} from '../../artifact/inspect.js'
import {AUTH_MODES} from '../../auth/config.js'
import {BaseCommand} from '../../base-command.js'
import {formatShape} from '../../model/signature.js'
import {formatBytes} from '../../system/format.js'

export default class ArtifactsShow extends BaseCommand {
  static override summary = 'Show an artifact: signature, pipeline, files, provenance and reference profile.'
  static override description =
    'REF is a version, NAME@VERSION, a digest (prefix) or a .tar path; default the newest. The artifact is verified first.\n\nExit codes: 0 ok, 1 the artifact fails verification, 2 usage error or no such artifact.'
  static override examples = [
    '<%= config.bin %> artifacts show 1.1.0',
    '<%= config.bin %> artifacts show sha256:3f2a --json',
    '<%= config.bin %> artifacts show 1.1.0 --openapi > openapi.json',
  ]
  static override args = {ref: Args.string({description: 'Version, NAME@VERSION, digest or .tar path.'})}
  static override flags = {
    openapi: Flags.boolean({
      description:
        'Print the OpenAPI 3.1 document "mlops serve" gives at /openapi.json for this artifact (for client generators), and nothing else. Its security schemes are those of serving.auth in mlops.yaml, or of --auth.',
    }),
    auth: Flags.option({
      description:
        'With --openapi: the auth mode the server runs with, as "mlops serve --auth" (default serving.auth).',
      options: AUTH_MODES,
      dependsOn: ['openapi'],
      env: 'MLOPS_AUTH',
    })(),
  }

  async run(): Promise<ShowResult | Record<string, unknown>> {
    const {args, flags} = await this.parse(ArtifactsShow)
    if (flags.openapi) {
      const document = await artifactOpenApiDocument({dir: flags.dir, ref: args.ref, authMode: flags.auth})
      // The document is the output in both modes: with --json oclif prints the returned value.
      this.say(JSON.stringify(document, null, 2))
      return document
    }
    const result = await showArtifact({dir: flags.dir, ref: args.ref})
    const {manifest: m, record} = result
    this.say(`${m.name}@${m.version}  ${record.digest}  ${formatBytes(record.size)}`)
    if (m.description) this.say(m.description)
    this.say(`model     ${m.model.path} (sha256 ${m.model.sha256.slice(0, 12)}…, ${formatBytes(m.model.size)})`)
    for (const i of m.model.signature.inputs) this.say(`  input   ${i.name} ${i.dtype}${formatShape(i.shape)}`)
    for (const o of m.model.signature.outputs)
      this.say(
        `  output  ${o.name} ${o.isTensor ? `${o.dtype}${formatShape(o.shape ?? [])}` : '(not a tensor: left out)'}`,
      )
    this.say(
      `pipeline  ${m.pipeline?.spec.features?.length ?? 0} features${m.pipeline?.module ? `, module ${m.pipeline.module}` : ''}`,
    )
    this.say(`golden    ${m.golden ? `${m.golden.count} cases` : 'none'}`)
    this.say(
      `profile   ${m.profile ? `${m.profile.rows} rows of ${m.profile.source}, ${Object.keys(m.profile.features).length} features` : 'none'}`,
    )
    this.say(
      `git       ${m.git ? `${m.git.commit ?? '?'} ${m.git.branch ?? ''}${m.git.dirty ? ' (dirty)' : ''}` : 'not a git repository'}`,
    )
    this.say(`built by  mlops ${m.tool.version}, onnxruntime-node ${m.runtime.onnxruntime}, node ${m.runtime.node}`)
    this.say('files')
    for (const f of m.files) this.say(`  ${f.sha256.slice(0, 12)}…  ${formatBytes(f.size).padStart(10)}  ${f.path}`)
    return result
  }
}
