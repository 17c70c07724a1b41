// The reports a run was asked for (JUnit XML for CI, HTML for people), written whole, and where they went.
import {relative, resolve} from 'node:path'

import {writeFileAtomically} from '../system/atomic.js'

export interface ReportPaths {
  junit?: string
  html?: string
}

/** Writes each report asked for; returns their paths as a person would type them (relative when under the cwd). */
export async function writeReports(
  asked: ReportPaths,
  render: {junit: () => string; html: () => string},
): Promise<ReportPaths> {
  const written: ReportPaths = {}
  for (const kind of ['junit', 'html'] as const) {
    const path = asked[kind]
    if (!path) continue
    await writeFileAtomically(path, render[kind]())
    written[kind] = shortPath(path)
  }
  return written
}

export function shortPath(path: string): string {
  const rel = relative(process.cwd(), resolve(path))
  return rel && !rel.startsWith('..') ? rel : resolve(path)
}
