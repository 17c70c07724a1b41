// What "mlops init" scaffolds for CI and images runs as written: every mlops step parses with the CLI's own parser (and
// the cheap ones run for real), mlops is installed the way the README says, and nothing installs a package named mlops
// from a registry, which publishes no such thing of ours.
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {Config, Flags, Parser} from '@oclif/core'
import {parse as parseYaml} from 'yaml'

import {projectStore} from '../../src/artifact/project.js'
import {exportForOwnDockerfile} from '../../src/image/build.js'
import {packageRoot} from '../../src/paths.js'
import {MODELS_DIR, mlops, tempDir} from '../support/cli.js'

interface GithubWorkflow {
  env: Record<string, string>
  jobs: Record<string, {env?: Record<string, string>; steps: {name?: string; run?: string}[]}>
}

type GitlabJob = {script?: string[]; before_script?: string[]}

/** Every shell line of both workflows, with where it comes from. */
function shellLines(project: string): {where: string; line: string}[] {
  const github = parseYaml(readFileSync(join(project, '.github/workflows/mlops.yml'), 'utf8')) as GithubWorkflow
  const gitlab = parseYaml(readFileSync(join(project, '.gitlab-ci.yml'), 'utf8')) as Record<string, GitlabJob>
  const lines: {where: string; line: string}[] = []
  for (const [job, {steps}] of Object.entries(github.jobs))
    for (const step of steps)
      for (const line of (step.run ?? '').split('\n'))
        if (line.trim()) lines.push({where: `GitHub ${job}: ${step.name}`, line: line.trim()})
  for (const [job, body] of Object.entries(gitlab))
    for (const line of [...(body.before_script ?? []), ...(body.script ?? [])])
      lines.push({where: `GitLab ${job}`, line: line.trim()})
  return lines
}

/** Parses `mlops …` the way the CLI does, without running it: oclif's parser with the command's own flags and args. */
async function parseWithCli(config: Config, line: string): Promise<void> {
  const words = line.split(/\s+/).slice(1)
  assert.ok(!line.includes('"') && !line.includes("'"), `${line}: quoted words; this test splits on spaces`)
  const topic = config.findCommand(`${words[0]}:${words[1]}`) !== undefined
  const found = config.findCommand(topic ? `${words[0]}:${words[1]}` : words[0])
  assert.ok(found, `${line}: no such command`)
  const command = await found.load()
  const json = command.enableJsonFlag ? {json: Flags.boolean()} : {}
  await Parser.parse(words.slice(topic ? 2 : 1), {
    flags: {...json, ...command.baseFlags, ...command.flags},
    args: command.args,
    strict: command.strict ?? true,
  })
}

describe('the CI workflows and Dockerfile that init writes', function () {
  this.timeout(300_000)
  let tmp: Awaited<ReturnType<typeof tempDir>>
  let project: string

  before(async () => {
    tmp = await tempDir()
    project = join(tmp.path, 'reg')
    const init = await mlops(['init', project, '--model', join(MODELS_DIR, 'xgboost_regressor.onnx'), '--yes'])
    assert.equal(init.exitCode, 0, init.stderr)
    const packaged = await mlops(['package', '--json', '--dir', project])
    assert.equal(packaged.exitCode, 0, packaged.stderr)
  })
  after(() => tmp.remove())

  it('installs nothing named mlops from a registry', () => {
    for (const file of ['Dockerfile', '.github/workflows/mlops.yml', '.gitlab-ci.yml']) {
      const text = readFileSync(join(project, file), 'utf8')
      assert.doesNotMatch(text, /\bnpm\s+(install|i|add|exec)\b[^\n]*\bmlops\b|\bnpx\s+mlops\b|\bmlops@/, file)
    }
  })

  it('every mlops step parses with the CLI’s own parser; package ran as written and deploy runs too', async () => {
    const config = await Config.load(packageRoot)
    const steps = shellLines(project).filter(({line}) => line.startsWith('mlops '))
    assert.deepEqual(
      [...new Set(steps.map(({line}) => line.split(' ')[1]))].sort(),
      ['build', 'deploy', 'package', 'test'],
      'the workflows package, test, build and deploy',
    )
    for (const {where, line} of steps)
      await parseWithCli(config, line).catch((error: Error) => assert.fail(`${where}: "${line}": ${error.message}`))

    // "mlops package --json" ran for real before; the deploy step names no version: it deploys the newest (here a dry run, so no gateway starts).
    const deploy = steps
      .find(({line}) => line.startsWith('mlops deploy'))!
      .line.split(/\s+/)
      .slice(1)
    const plan = await mlops([...deploy, '--dry-run', '--json', '--dir', project])
    assert.equal(plan.exitCode, 0, plan.stderr + plan.stdout)
    assert.match(plan.stdout, /"0\.1\.0"/)
  })

  it('installs mlops from its source with the README’s command, pinned to this installation', () => {
    const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8')
    assert.match(readme, /npm ci && npm run build && npm link/, 'the README says how mlops gets on PATH')
    const lines = shellLines(project).map(({line}) => line)
    assert.equal(
      lines.filter((line) => line.includes('npm ci --no-audit --no-fund && npm run build && npm link')).length,
      2,
    )
    const github = parseYaml(readFileSync(join(project, '.github/workflows/mlops.yml'), 'utf8')) as GithubWorkflow
    const env = github.jobs.release.env!
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], {cwd: packageRoot, encoding: 'utf8'}).trim()
    assert.equal(env.MLOPS_REF, existsSync(join(packageRoot, '.git')) ? commit : 'v0.1.0')
    // The install script is valid shell, and stops with a message when no repository is known.
    const install = github.jobs.release.steps.find((step) => step.run?.includes('npm link'))!.run!
    execFileSync('bash', ['-n', '-c', install])
    const unset = (() => {
      try {
        execFileSync('bash', ['-c', install], {env: {...process.env, MLOPS_REPOSITORY: ''}, stdio: 'pipe'})
        return ''
      } catch (error) {
        return String((error as {stderr: Buffer}).stderr)
      }
    })()
    assert.match(unset, /set MLOPS_REPOSITORY in this workflow to the git URL of mlops/)
  })

  it('the Dockerfile copies only what "mlops build" exports for it, and .dockerignore lets it through', async () => {
    const dockerfile = readFileSync(join(project, 'Dockerfile'), 'utf8')
    const sources = [...dockerfile.matchAll(/^COPY\s+(?!--from)(?:--\S+\s+)*(\S+)\s+\S+$/gm)].map((m) => m[1])
    assert.deepEqual(sources, [
      '.mlops/export/runtime/node_modules/',
      '.mlops/export/runtime/package/',
      '.mlops/export/artifact.tar',
    ])
    const {store, name} = await projectStore(project)
    const runtime = await exportForOwnDockerfile({
      projectDir: project,
      arch: process.arch,
      progress: () => undefined,
      exportArtifact: (path) => store.export(undefined, path, {name}),
    })
    assert.ok(runtime.packages > 10)
    for (const source of sources) assert.ok(existsSync(join(project, source)), `${source} is exported`)
    assert.ok(existsSync(join(project, '.mlops/export/runtime/package/bin/run.js')))
    const allowed = readFileSync(join(project, '.dockerignore'), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('!'))
      .map((line) => line.slice(1))
    for (const source of sources)
      assert.ok(
        allowed.some((path) => source.startsWith(path)),
        `${source} is let through .dockerignore`,
      )
  })
})
