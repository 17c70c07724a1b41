// The error for an artifact that fails verification, shared by verify, deploy, push and pull (which must not load the
// project's store: the store loads pull on demand).
import {MlopsError} from '../errors.js'
import type {VerifyReport} from './store.js'

export function verificationError(report: VerifyReport): MlopsError {
  const label = report.name ? `artifact ${report.name}@${report.version}` : `artifact ${report.path}`
  return new MlopsError(
    'ARTIFACT_TAMPERED',
    `${label} fails verification:\n${report.problems.map((p) => `  ${p.message}`).join('\n')}`,
    {
      hint: report.version
        ? `Package it again from the same sources ("mlops package --version ${report.version}": a byte-identical build replaces the damaged archive), or restore ${report.path} from a copy.`
        : 'Export it again from the store it came from.',
      details: report,
    },
  )
}
