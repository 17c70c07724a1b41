import assert from 'node:assert/strict'

import {parseConfig, toFieldPath} from '../../src/config/load.js'
import {ConfigError} from '../../src/errors.js'

function issuesOf(yaml: string): {path: string; message: string}[] {
  try {
    parseConfig(yaml, 'mlops.yaml')
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`)
    assert.equal(error.exitCode, 2)
    return error.issues
  }
  assert.fail('the config was accepted')
}

describe('config: mlops.yaml', () => {
  it('accepts a minimal config', () => {
    const config = parseConfig('name: credit-risk\nmodel:\n  path: model/model.onnx\n')
    assert.equal(config.name, 'credit-risk')
    assert.equal(config.model.path, 'model/model.onnx')
  })

  it('names an unknown key and suggests the close one', () => {
    const issues = issuesOf('name: a\nmodel:\n  path: m.onnx\n  thread: 2\n')
    assert.deepEqual(issues, [{path: 'model.thread', message: 'unknown key; did you mean "threads"?'}])
  })

  it('names an unknown top-level section', () => {
    const issues = issuesOf('name: a\nmodel: {path: m.onnx}\nservng: {}\n')
    assert.equal(issues[0].path, 'servng')
    assert.match(issues[0].message, /did you mean "serving"/)
  })

  it('reports every problem at once with field paths', () => {
    const issues = issuesOf('name: Not Valid\nmodel:\n  path: 3\n  threads: 0\n')
    const paths = issues.map((i) => i.path).sort()
    assert.deepEqual(paths, ['model.path', 'model.threads', 'name'])
    assert.match(issues.find((i) => i.path === 'model.threads')!.message, /between 1 and 256/)
  })

  it('requires the model section', () => {
    assert.deepEqual(issuesOf('name: a\n'), [{path: 'model', message: 'is required'}])
  })

  it('refuses a version that is not semver', () => {
    assert.deepEqual(issuesOf('name: a\nversion: one\nmodel: {path: m.onnx}\n'), [
      {path: 'version', message: '"one" is not a semantic version (e.g. 1.2.0)'},
    ])
  })

  it('gives the line and column of a YAML syntax error', () => {
    const issues = issuesOf('name: a\nmodel:\n  path: [unclosed\n')
    assert.match(issues[0].path, /^line \d+, column \d+$/)
    assert.doesNotMatch(issues[0].message, /at line \d+, column \d+:$/, 'the position once, in the path')
  })

  it('refuses a document that is not a mapping', () => {
    assert.equal(issuesOf('- a\n- b\n')[0].path, '')
  })

  it('turns JSON pointers into field paths', () => {
    assert.equal(toFieldPath('/deploy/canary/steps/2'), 'deploy.canary.steps[2]')
    assert.equal(toFieldPath(''), '')
  })
})
