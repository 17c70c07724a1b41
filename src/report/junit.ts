// JUnit XML for CI dashboards: suites of testcases, a failure carrying what was measured and the threshold it crossed.

export interface JunitCase {
  name: string
  /** Shown by CI as the case's class or group, e.g. `drift.feature`. */
  classname: string
  /** Seconds. */
  time?: number
  /** Present when the case failed: a one-line message (measured value vs threshold) and optional detail. */
  failure?: {message: string; type?: string; detail?: string}
  /** Present when the case was not evaluated (e.g. not enough data). */
  skipped?: string
  /** Printed by CI beside the case. */
  output?: string
}

export interface JunitSuite {
  name: string
  timestamp?: string
  cases: JunitCase[]
  /** Shown as <properties>: thresholds, artifact digest, data window. */
  properties?: Record<string, string | number>
}

export function junitXml(suites: JunitSuite[]): string {
  const count = (pick: (c: JunitCase) => boolean) => suites.reduce((n, s) => n + s.cases.filter(pick).length, 0)
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>']
  lines.push(
    `<testsuites tests="${count(() => true)}" failures="${count((c) => c.failure !== undefined)}" skipped="${count((c) => c.skipped !== undefined)}">`,
  )
  for (const suite of suites) {
    const failures = suite.cases.filter((c) => c.failure).length
    const skipped = suite.cases.filter((c) => c.skipped !== undefined).length
    const time = suite.cases.reduce((t, c) => t + (c.time ?? 0), 0)
    lines.push(
      `  <testsuite ${attrs({name: suite.name, tests: suite.cases.length, failures, errors: 0, skipped, time: time.toFixed(3), timestamp: suite.timestamp})}>`,
    )
    const properties = Object.entries(suite.properties ?? {})
    if (properties.length > 0) {
      lines.push('    <properties>')
      for (const [name, value] of properties) lines.push(`      <property ${attrs({name, value})}/>`)
      lines.push('    </properties>')
    }
    for (const c of suite.cases) {
      const open = `    <testcase ${attrs({name: c.name, classname: c.classname, time: (c.time ?? 0).toFixed(3)})}`
      if (!c.failure && c.skipped === undefined && c.output === undefined) {
        lines.push(`${open}/>`)
        continue
      }
      lines.push(`${open}>`)
      if (c.failure)
        lines.push(
          `      <failure ${attrs({message: c.failure.message, type: c.failure.type ?? 'failure'})}>${escapeXml(c.failure.detail ?? c.failure.message)}</failure>`,
        )
      if (c.skipped !== undefined) lines.push(`      <skipped ${attrs({message: c.skipped})}/>`)
      if (c.output !== undefined) lines.push(`      <system-out>${escapeXml(c.output)}</system-out>`)
      lines.push('    </testcase>')
    }
    lines.push('  </testsuite>')
  }
  lines.push('</testsuites>')
  return lines.join('\n') + '\n'
}

function attrs(values: Record<string, string | number | undefined>): string {
  return Object.entries(values)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}="${escapeXml(String(v), true)}"`)
    .join(' ')
}

/**
 * Escapes text for element content, or for an attribute value (where line breaks and tabs must be character
 * references, or a parser folds them into spaces). Characters XML 1.0 forbids (most C0 controls, lone surrogates,
 * U+FFFE/U+FFFF) cannot be escaped at all, so they become U+FFFD rather than making the file unreadable.
 */
export function escapeXml(text: string, attribute = false): string {
  return text
    .replace(
      // eslint-disable-next-line no-control-regex -- matching the control characters XML forbids is the point
      /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g,
      '\uFFFD',
    )
    .replace(attribute ? /[&<>"'\n\r\t]/g : /[&<>]/g, (ch) => XML_ENTITIES[ch])
}

const XML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\n': '&#10;',
  '\r': '&#13;',
  '\t': '&#9;',
}
