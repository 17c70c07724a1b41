// The README's configuration reference is generated from schemas/config: a setting added to a schema without
// `npm run docs` fails here, so users never read a reference that has drifted from what the validator accepts.
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {configReference, withReference} from '../../scripts/config-reference.js'
import {packageRoot} from '../../src/paths.js'

describe('README configuration reference', function () {
  it('is the one the schemas generate (run "npm run docs" after changing a schema)', function () {
    const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8')
    assert.equal(readme, withReference(readme))
  })

  it('names every top-level section and nested settings by their dotted path', function () {
    const reference = configReference()
    for (const section of ['name', 'model', 'pipeline', 'serving', 'checks', 'deploy', 'monitor'])
      assert.match(reference, new RegExp(`^\\| \`${section}\` \\|`, 'm'))
    assert.match(reference, /^\| `serving\.batching\.max_batch_size` \| integer \(≥ 1, ≤ 65536\) \|/m)
  })
})
