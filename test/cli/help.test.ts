// "mlops help COMMAND" shows the same help as "mlops COMMAND --help", for commands under a topic too.
import assert from 'node:assert/strict'

import {mlops} from '../support/cli.js'

describe('mlops help', function () {
  this.timeout(60_000)

  it('shows a command’s help, as --help does', async () => {
    for (const command of [['package'], ['artifacts', 'show']]) {
      const help = await mlops(['help', ...command])
      assert.equal(help.exitCode, 0, help.stderr)
      assert.match(help.stdout, new RegExp(`\\$ mlops ${command.join(' ')}`))
      assert.equal(help.stdout, (await mlops([...command, '--help'])).stdout)
    }
  })
})
