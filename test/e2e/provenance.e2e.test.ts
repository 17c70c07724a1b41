// Git provenance in the manifest, the dirty-tree warning, and --git-tag, on a real git repository.
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {simpleGit} from 'simple-git'

import {exampleProject, mlops} from '../support/cli.js'

describe('package: git provenance (e2e)', function () {
  this.timeout(60_000)
  let example: Awaited<ReturnType<typeof exampleProject>>
  let project: string
  before(async () => {
    example = await exampleProject()
    project = example.project
    writeFileSync(join(project, '.gitignore'), '.mlops/\n')
    const git = simpleGit({baseDir: project})
    await git.init().addConfig('user.name', 'Test User').addConfig('user.email', 'test@example.com')
    await git.add('.').commit('the model')
  })
  after(async () => example.remove())

  it('records commit and branch, and tags the release with --git-tag', async () => {
    const head = (await simpleGit({baseDir: project}).revparse(['HEAD'])).trim()
    const result = await mlops(['package', '--git-tag', '--json', '--dir', project])
    assert.equal(result.exitCode, 0, result.stderr)
    const out = result.json as {git: {commit: string; dirty: boolean}; tag: string; warnings: string[]}
    assert.equal(out.git.commit, head)
    assert.equal(out.git.dirty, false)
    assert.equal(out.tag, 'credit-risk-v1.0.0')
    const tags = await simpleGit({baseDir: project}).tags()
    assert.ok(tags.all.includes('credit-risk-v1.0.0'))
    const show = await mlops(['artifacts', 'show', '--json', '--dir', project])
    assert.equal((show.json as {manifest: {git: {commit: string}}}).manifest.git.commit, head)
  })

  it('warns about a dirty tree and records it', async () => {
    writeFileSync(join(project, 'golden.jsonl'), '')
    const result = await mlops(['package', '--bump', 'patch', '--json', '--dir', project])
    assert.equal(result.exitCode, 0, result.stderr)
    const out = result.json as {git: {dirty: boolean}; warnings: string[]}
    assert.equal(out.git.dirty, true)
    assert.ok(out.warnings.some((w) => /uncommitted changes/.test(w)))
  })
})
