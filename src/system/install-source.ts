// Where this mlops came from (the git repository and commit of its source tree), so the CI workflows "mlops init"
// writes install the same mlops the same way the README does: from source, since no registry publishes it.
import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {packageRoot, toolVersion} from '../paths.js'
import {gitInfo} from './git.js'

export interface InstallSource {
  mlopsVersion: string
  /** The git URL to clone mlops from; empty when this installation is not a clone with a remote. */
  mlopsRepository: string
  /** The commit of this installation, or the version's tag when it is not a git clone. */
  mlopsRef: string
}

export async function installSource(): Promise<InstallSource> {
  const version = toolVersion()
  // Only mlops' own clone counts: installed under someone else's repository, git would answer for that one.
  const git = existsSync(join(packageRoot, '.git')) ? await gitInfo(packageRoot) : undefined
  return {mlopsVersion: version, mlopsRepository: git?.remote ?? '', mlopsRef: git?.commit ?? `v${version}`}
}
