import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'

import {Plugin} from '@oclif/core'

import {packageRoot} from '../../src/paths.js'

describe('oclif.manifest.json', () => {
  it('lists the same commands and flags as the build (run "npm run build" and commit it when this fails)', async function () {
    const plugin = new Plugin({root: packageRoot, type: 'core', ignoreManifest: true, errorOnManifestCreate: true})
    await plugin.load()
    const committed = JSON.parse(readFileSync(`${packageRoot}/oclif.manifest.json`, 'utf8')) as typeof plugin.manifest
    assert.deepEqual(Object.keys(committed.commands).sort(), Object.keys(plugin.manifest.commands).sort())
    assert.deepEqual(
      JSON.parse(JSON.stringify(committed.commands)),
      JSON.parse(JSON.stringify(plugin.manifest.commands)),
    )
  })

  it('is committed as the build wrote it', function () {
    let tracked = true
    try {
      execFileSync('git', ['ls-files', '--error-unmatch', 'oclif.manifest.json'], {cwd: packageRoot, stdio: 'ignore'})
    } catch {
      tracked = false
    }
    assert.ok(tracked, 'oclif.manifest.json is not tracked by git: run "npm run build" and commit it')
    const diff = execFileSync('git', ['diff', '--stat', '--', 'oclif.manifest.json'], {
      cwd: packageRoot,
      encoding: 'utf8',
    })
    assert.equal(
      diff,
      '',
      `oclif.manifest.json differs from the committed one:\n${diff}\nRun "npm run build" and commit it.`,
    )
  })
})
