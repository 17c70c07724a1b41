// The image section of mlops.yaml through the config loader: what it accepts, and errors by field path.
import assert from 'node:assert/strict'

import {validateConfig} from '../../src/config/load.js'
import {ConfigError} from '../../src/errors.js'

const base = {name: 'credit-risk', model: {path: 'model.onnx'}}

function issues(image: unknown): string[] {
  try {
    validateConfig({...base, image})
    return []
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error))
    return error.issues.map((i) => `${i.path}: ${i.message}`)
  }
}

describe('image config', () => {
  it('accepts every documented key', () => {
    assert.deepEqual(
      issues({
        engine: 'buildah',
        repository: 'registry.example.com:5000/ml/credit-risk',
        base_image: 'node:20@sha256:' + 'a'.repeat(64),
        dockerfile: 'docker/Dockerfile',
        build_args: {HTTP_PROXY: 'http://proxy:3128'},
        locale: false,
        tls_verify: false,
        buildah: {vfs: true},
      }),
      [],
    )
  })

  const bad: Array<[string, unknown, RegExp]> = [
    ['an unknown engine', {engine: 'kaniko'}, /^image\.engine: must be one of "docker", "podman", "buildah"$/],
    ['a repository with a tag', {repository: 'credit-risk:1.0'}, /^image\.repository: .*image name without a tag/],
    ['a repository in capitals', {repository: 'ML/Credit'}, /^image\.repository: /],
    ['a build argument name with a dash', {build_args: {'HTTP-PROXY': 'x'}}, /^image\.build_args/],
    ['a misspelt key', {base_imag: 'node:20'}, /^image\.base_imag: unknown key; did you mean "base_image"\?$/],
    ['an unknown buildah option', {buildah: {overlay: true}}, /^image\.buildah\.overlay: unknown key/],
  ]
  for (const [what, image, message] of bad) {
    it(`refuses ${what} with the field path`, () => {
      const found = issues(image)
      assert.ok(
        found.some((issue) => message.test(issue)),
        found.join('\n'),
      )
    })
  }
})
