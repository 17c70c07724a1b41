// The generated Dockerfile, its labels and image references: pure tables.
import assert from 'node:assert/strict'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {
  DEFAULT_BASE_IMAGE,
  imageLabels,
  labelArguments,
  parseReference,
  renderDockerfile,
  sourceUrl,
} from '../../src/image/dockerfile.js'
import {isMlopsError} from '../../src/errors.js'
import {packageRoot, templatesDir} from '../../src/paths.js'

const template = readFileSync(join(templatesDir, 'image', 'Dockerfile'), 'utf8')
const values = {
  name: 'credit-risk',
  version: '1.2.0',
  baseImage: 'example.com/node@sha256:' + 'a'.repeat(64),
  mlopsVersion: '0.1.0',
  labels: {'dev.mlops.artifact.name': 'credit-risk'},
  locale: true,
}

/** The instructions of a Dockerfile, continuation lines joined, comments dropped. */
function instructions(dockerfile: string): string[] {
  return dockerfile
    .replaceAll(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() && !line.startsWith('#'))
}

describe('image Dockerfile template', () => {
  it('puts the runtime before the artifact, and the artifact and labels last, so new versions reuse the runtime layers', () => {
    const lines = instructions(renderDockerfile(template, values))
    const at = (prefix: string) => lines.findIndex((line) => line.startsWith(prefix))
    assert.ok(at('COPY runtime/node_modules/') < at('COPY runtime/package/'))
    assert.ok(at('COPY runtime/package/') < at('COPY artifact.tar'))
    assert.deepEqual(
      lines.slice(-2).map((line) => line.split(' ')[0]),
      ['COPY', 'LABEL'],
      'artifact and labels are the last instructions',
    )
    assert.equal(lines.at(-2), 'COPY artifact.tar /app/artifact.tar')
  })

  it('runs mlops serve on the artifact as a non-root user, with a port, a TLS folder and a healthcheck', () => {
    const lines = instructions(renderDockerfile(template, values))
    assert.ok(
      lines.includes(
        'CMD ["node", "/opt/mlops/bin/run.js", "serve", "/app/artifact.tar", "--host", "0.0.0.0", "--port", "8080"]',
      ),
    )
    assert.ok(lines.includes('USER 1000:1000'))
    assert.ok(lines.includes('EXPOSE 8080'))
    const healthcheck = /CMD \["node", "\/opt\/mlops\/dist\/(image\/healthcheck)\.js", "8080"\]$/.exec(
      lines.find((line) => line.startsWith('HEALTHCHECK'))!,
    )
    assert.ok(healthcheck, "the healthcheck runs mlops' own script on the port")
    assert.ok(existsSync(join(packageRoot, 'src', `${healthcheck[1]}.ts`)), 'the script is one mlops compiles to dist/')
    assert.ok(lines.some((line) => /^ENV .*\bMLOPS_TLS_DIR=\/etc\/mlops\/tls\b/.test(line)))
    assert.ok(lines.includes(`ARG BASE_IMAGE=${values.baseImage}`))
  })

  it('compiles the en_US.UTF-8 locale in a throwaway stage, or leaves it out', () => {
    const withLocale = renderDockerfile(template, values)
    assert.match(withLocale, /^FROM \$\{BASE_IMAGE\} AS locale$/m)
    assert.match(withLocale, /^COPY --from=locale \/usr\/lib\/locale\/locale-archive /m)
    assert.match(withLocale, /^ENV LANG=en_US\.UTF-8 LC_ALL=en_US\.UTF-8$/m)
    const without = renderDockerfile(template, {...values, locale: false})
    assert.doesNotMatch(without, /locale|LANG/)
    assert.equal(instructions(without).filter((line) => line.startsWith('FROM')).length, 1)
    for (const text of [withLocale, without]) assert.doesNotMatch(text, /\{\{/, 'no placeholder left')
  })

  it('quotes label values so spaces, quotes and newlines cannot break the instruction', () => {
    assert.equal(labelArguments({a: 'x y', b: 'say "hi"\nthere'}), '"a"="x y" \\\n      "b"="say \\"hi\\" there"')
  })

  it('pins the default base image by digest', () => {
    assert.match(DEFAULT_BASE_IMAGE, /^docker\.io\/library\/node:20-bookworm-slim@sha256:[0-9a-f]{64}$/)
  })
})

describe('image labels', () => {
  const record = {
    name: 'credit-risk',
    version: '1.2.0',
    digest: 'sha256:' + 'b'.repeat(64),
    storedAt: '2026-01-02T03:04:05.000Z',
    git: {commit: 'c'.repeat(40), dirty: false, remote: 'git@github.com:acme/credit.git'},
  }

  it('take created from the artifact and provenance from its git info', () => {
    assert.deepEqual(imageLabels({record, baseImage: 'node:20'}), {
      'org.opencontainers.image.title': 'credit-risk',
      'org.opencontainers.image.version': '1.2.0',
      'org.opencontainers.image.revision': 'c'.repeat(40),
      'org.opencontainers.image.created': '2026-01-02T03:04:05.000Z',
      'org.opencontainers.image.source': 'https://github.com/acme/credit',
      'org.opencontainers.image.base.name': 'node:20',
      'dev.mlops.artifact.name': 'credit-risk',
      'dev.mlops.artifact.version': '1.2.0',
      'dev.mlops.artifact.digest': 'sha256:' + 'b'.repeat(64),
    })
  })

  it('leave out what the artifact does not know (an archive from outside a store, no git)', () => {
    const labels = imageLabels({record: {...record, storedAt: '', git: undefined}})
    assert.deepEqual(Object.keys(labels).sort(), [
      'dev.mlops.artifact.digest',
      'dev.mlops.artifact.name',
      'dev.mlops.artifact.version',
      'org.opencontainers.image.title',
      'org.opencontainers.image.version',
    ])
  })

  const remotes: Array<[string, string | undefined]> = [
    ['git@github.com:acme/credit.git', 'https://github.com/acme/credit'],
    ['https://github.com/acme/credit.git', 'https://github.com/acme/credit'],
    ['https://user:ghp_secret@github.com/acme/credit', 'https://github.com/acme/credit'],
    ['ssh://git@gitlab.example.com/ml/credit.git', 'https://gitlab.example.com/ml/credit'],
    ['/srv/git/credit', undefined],
    ['file:///srv/git/credit', undefined],
  ]
  for (const [remote, url] of remotes) {
    it(`source of ${remote} is ${url ?? 'left out'}`, () => assert.equal(sourceUrl(remote), url))
  }
})

describe('image references', () => {
  const valid: Array<[string, string, string]> = [
    ['credit-risk', 'credit-risk', '1.2.0'],
    ['credit-risk:latest', 'credit-risk', 'latest'],
    ['registry.example.com/ml/credit-risk', 'registry.example.com/ml/credit-risk', '1.2.0'],
    ['registry.example.com:5000/ml/credit-risk:1.2.0-rc.1', 'registry.example.com:5000/ml/credit-risk', '1.2.0-rc.1'],
    ['127.0.0.1:5000/credit_risk', '127.0.0.1:5000/credit_risk', '1.2.0'],
    ['localhost/a__b/c-d.e', 'localhost/a__b/c-d.e', '1.2.0'],
  ]
  for (const [reference, repository, tag] of valid) {
    it(`${reference} → ${repository}:${tag}`, () =>
      assert.deepEqual(parseReference(reference, '1.2.0'), {repository, tag}))
  }

  it('turns semver build metadata into a valid tag', () => {
    assert.equal(parseReference('app', '1.2.0+build.5').tag, '1.2.0_build.5')
  })

  for (const reference of [
    'Credit-Risk',
    'app:tag with space',
    'app@sha256:' + 'a'.repeat(64),
    'app:',
    '-app',
    'a//b',
    '',
  ]) {
    it(`refuses ${JSON.stringify(reference)} as a usage error`, () => {
      assert.throws(
        () => parseReference(reference, '1.0.0'),
        (error: unknown) => isMlopsError(error) && error.code === 'IMAGE_REFERENCE_INVALID' && error.exitCode === 2,
      )
    })
  }
})
