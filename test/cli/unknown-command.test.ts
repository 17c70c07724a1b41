// An unknown command is a usage error like any other, in words or in JSON, with the nearest command when there is one.
import assert from 'node:assert/strict'

import {mlops} from '../support/cli.js'

describe('an unknown command', function () {
  this.timeout(60_000)

  it('exits 2 with the nearest command in the hint, and the arguments are not taken for part of its name', async () => {
    const typo = await mlops(['deplyo', '1.0.0', '--full'])
    assert.equal(typo.exitCode, 2)
    assert.equal(
      typo.stderr,
      'Error: there is no command "deplyo"\nHint: Did you mean "mlops deploy"? "mlops --help" lists the commands.',
    )
    const json = await mlops(['artifacts', 'lst', '--json'])
    assert.equal(json.exitCode, 2)
    assert.deepEqual(json.json, {
      error: {
        code: 'COMMAND_NOT_FOUND',
        message: 'there is no command "artifacts lst"',
        hint: 'Did you mean "mlops artifacts list"? "mlops --help" lists the commands.',
      },
    })
    const far = await mlops(['kubernetes'])
    assert.match(far.stderr, /^Error: there is no command "kubernetes"\nHint: "mlops --help" lists the commands\.$/)
  })
})
