// The credit-risk example as the checks see it, without packaging: features from its mlops.yaml, its golden cases.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {readGoldenCases} from '../../src/checks/golden.js'
import type {Subject} from '../../src/checks/subject.js'
import {parseConfig} from '../../src/config/load.js'
import {packageRoot} from '../../src/paths.js'
import {serveSettings} from '../../src/serve/config.js'

export const EXAMPLE = join(packageRoot, 'examples', 'credit-risk')

export async function exampleSubject(): Promise<Subject> {
  const config = parseConfig(readFileSync(join(EXAMPLE, 'mlops.yaml'), 'utf8'))
  return {
    name: config.name,
    version: config.version!,
    digest: `sha256:${'0'.repeat(64)}`,
    signature: {
      inputs: [{name: 'features', dtype: 'float32', shape: ['N', 13]}],
      outputs: [{name: 'probability', isTensor: true, dtype: 'float32', shape: ['N', 1]}],
    },
    features: config.pipeline!.features,
    module: false,
    golden: await readGoldenCases(join(EXAMPLE, 'golden.jsonl')),
    reference: join(EXAMPLE, 'data', 'reference.csv'),
    serving: serveSettings(),
    dir: EXAMPLE,
  }
}
