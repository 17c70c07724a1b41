import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {execa} from 'execa'

import {BIN, MODELS_DIR, tempDir} from '../support/cli.js'

/**
 * Runs a command in a real pseudo-terminal (python3's pty module) and answers each prompt when its text appears,
 * the way a person would; prints {"exitCode", "output"} as JSON when the command ends.
 */
const PTY_DRIVER = String.raw`
import json, os, pty, select, sys, time
argv, answers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MLOPS_NO_PROGRESS")}
    os.execvpe(argv[0], argv, env)
output, seen_upto, deadline = b"", 0, time.time() + 60
while time.time() < deadline:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    if answers and answers[0][0].encode() in output[seen_upto:]:
        seen_upto = len(output)
        time.sleep(0.2)
        for key in answers.pop(0)[1]:
            os.write(fd, key.encode())
            time.sleep(0.1)
_, status = os.waitpid(pid, 0)
print(json.dumps({"exitCode": os.waitstatus_to_exitcode(status), "output": output.decode(errors="replace"), "unanswered": [a[0] for a in answers]}))
`

async function inTerminal(
  argv: string[],
  answers: [prompt: string, keys: string[]][],
): Promise<{exitCode: number; output: string; unanswered: string[]}> {
  const result = await execa('python3', ['-c', PTY_DRIVER, JSON.stringify(argv), JSON.stringify(answers)], {
    timeout: 90_000,
  })
  return JSON.parse(String(result.stdout)) as {exitCode: number; output: string; unanswered: string[]}
}

const ENTER = '\r'
const DOWN = '\u001B[B'

describe('mlops init on a terminal', function () {
  let tmp: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    tmp = await tempDir('mlops-init-tty-')
  })
  after(async () => tmp.remove())

  it('asks for the model, the name and the template, and writes the answers into mlops.yaml', async function () {
    const dir = join(tmp.path, 'asked')
    const {exitCode, output, unanswered} = await inTerminal(
      ['node', BIN, 'init', dir],
      [
        ['Path to the ONNX model', [...join(MODELS_DIR, 'mnist_cnn.onnx'), ENTER]],
        ['Project name', [...'digits', ENTER]],
        // The model's input suggests image; one step down is tensor.
        ['Project template', [DOWN, ENTER]],
      ],
    )
    assert.deepEqual(unanswered, [], output)
    assert.equal(exitCode, 0, output)
    assert.match(output, /image \(suggested by the model's inputs\)/)
    const config = readFileSync(join(dir, 'mlops.yaml'), 'utf8')
    assert.match(config, /^name: digits$/m)
    assert.match(config, /^ {2}path: model\/mnist_cnn\.onnx$/m)
    assert.match(config, /One tensor feature per model input/, 'the tensor template, not the suggested image one')
  })

  it('asks only for what the flags do not give, and never with --yes', async function () {
    const dir = join(tmp.path, 'flags')
    const model = join(MODELS_DIR, 'xgboost_regressor.onnx')
    const asked = await inTerminal(
      ['node', BIN, 'init', dir, '--model', model, '--template', 'tabular'],
      [['Project name', [ENTER]]],
    )
    assert.equal(asked.exitCode, 0, asked.output)
    assert.doesNotMatch(asked.output, /Path to the ONNX model|Project template/)
    assert.match(
      readFileSync(join(dir, 'mlops.yaml'), 'utf8'),
      /^name: flags$/m,
      'Enter takes the default name, the directory name',
    )

    const quiet = await inTerminal(['node', BIN, 'init', join(tmp.path, 'quiet'), '--yes'], [])
    assert.equal(quiet.exitCode, 2, quiet.output)
    assert.match(quiet.output, /--model PATH\/TO\/model\.onnx/)
  })
})
