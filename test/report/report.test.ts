// The shared report writers: JUnit XML that a real XML parser reads back exactly, and HTML with escaped text and inline SVG only.
import assert from 'node:assert/strict'

import {execa} from 'execa'

import {barChart, escapeHtml, htmlPage, htmlTable, lineChart} from '../../src/report/html.js'
import {junitXml} from '../../src/report/junit.js'

/** Parses with Python's expat (an independent, strict XML parser) and returns what it read. */
async function parseXml(xml: string): Promise<{
  suites: {name: string; tests: string; failures: string; properties: [string, string][]}[]
  cases: {name: string; failure?: string; failureText?: string; skipped?: string; out?: string}[]
}> {
  const script = `
import json, sys
from xml.dom import minidom
d = minidom.parseString(sys.stdin.buffer.read())
text = lambda n: "".join(c.data for c in n.childNodes if c.nodeType in (c.TEXT_NODE, c.CDATA_SECTION_NODE))
suites = [{"name": s.getAttribute("name"), "tests": s.getAttribute("tests"), "failures": s.getAttribute("failures"), "properties": [[p.getAttribute("name"), p.getAttribute("value")] for p in s.getElementsByTagName("property")]} for s in d.getElementsByTagName("testsuite")]
cases = []
for c in d.getElementsByTagName("testcase"):
    item = {"name": c.getAttribute("name")}
    f = c.getElementsByTagName("failure")
    if f: item["failure"] = f[0].getAttribute("message"); item["failureText"] = text(f[0])
    s = c.getElementsByTagName("skipped")
    if s: item["skipped"] = s[0].getAttribute("message")
    o = c.getElementsByTagName("system-out")
    if o: item["out"] = text(o[0])
    cases.append(item)
print(json.dumps({"suites": suites, "cases": cases}))
`
  const {stdout} = await execa('/usr/bin/python3', ['-c', script], {input: xml})
  return JSON.parse(stdout)
}

describe('report writers', function () {
  it('junitXml: counts, failures with measured value and threshold, and text that survives escaping', async () => {
    const tricky = `a<b & "c" 'd' ]]> \u0001 tab\there\nline2`
    const xml = junitXml([
      {
        name: 'drift: features',
        properties: {artifact: 'm@1.0.0', records: 42},
        cases: [
          {
            name: 'income',
            classname: 'drift.feature',
            failure: {message: 'income: psi 0.18 ≥ 0.1', detail: 'psi 0.18 (drift at 0.1 or more)\nvalues: 2000'},
          },
          {name: tricky, classname: 'drift.feature', failure: {message: tricky}},
          {name: 'age', classname: 'drift.feature', output: 'psi 0.01'},
          {name: 'rare', classname: 'drift.feature', skipped: '12 values, fewer than min_samples 100'},
        ],
      },
      {name: 'empty', cases: []},
    ])
    const parsed = await parseXml(xml)
    assert.deepEqual(
      parsed.suites.map((s) => [s.name, s.tests, s.failures]),
      [
        ['drift: features', '4', '2'],
        ['empty', '0', '0'],
      ],
    )
    assert.deepEqual(parsed.suites[0].properties, [
      ['artifact', 'm@1.0.0'],
      ['records', '42'],
    ])
    assert.equal(parsed.cases[0].failure, 'income: psi 0.18 ≥ 0.1')
    assert.equal(parsed.cases[0].failureText, 'psi 0.18 (drift at 0.1 or more)\nvalues: 2000')
    // The control character cannot exist in XML 1.0: it becomes U+FFFD; everything else, newlines and tabs included, comes back.
    const expected = tricky.replace('\u0001', '\uFFFD')
    assert.equal(parsed.cases[1].name, expected)
    assert.equal(parsed.cases[1].failure, expected)
    assert.equal(parsed.cases[2].out, 'psi 0.01')
    assert.equal(parsed.cases[3].skipped, '12 values, fewer than min_samples 100')
    assert.match(xml, /<testsuites tests="4" failures="2" skipped="1">/)
  })

  it('htmlPage and charts: text escaped, one inline SVG per chart, nothing loaded from elsewhere', () => {
    const bars = barChart(
      ['≤ 10', '<b>', '> 20'],
      [
        {name: 'baseline', values: [0.3, 0.4, 0.3]},
        {name: 'current', values: [0.1, 0.2, 0.7]},
      ],
      {title: 'x & y'},
    )
    const line = lineChart([0, 50, 100], [{name: 'p', values: [1, 2, 4]}], {xFormat: (v) => `p${v}`})
    const page = htmlPage({
      title: 'Drift <report>',
      subtitle: 'a & b',
      body: `${htmlTable(['col'], [{cells: ['<script>alert(1)</script>'], classes: ['bad']}])}\n${bars}\n${line}`,
    })
    assert.match(page, /^<!doctype html>/)
    assert.ok(page.includes('<title>Drift &lt;report&gt;</title>'))
    assert.ok(page.includes('&lt;script&gt;alert(1)&lt;/script&gt;'))
    assert.doesNotMatch(page, /<script|<link|src="http|href="http|@import/)
    assert.equal((page.match(/<svg /g) ?? []).length, 2)
    assert.equal((bars.match(/<rect [^>]*><title>/g) ?? []).length, 6, 'one bar per label and series')
    // The tallest bar (0.7) reaches higher (smaller y) than the 0.1 one.
    const heights = [...bars.matchAll(/height="([\d.]+)" fill="#e0702b"/g)].map((m) => Number(m[1]))
    assert.ok(heights[2] > heights[0] * 5)
    assert.ok(bars.includes('&lt;b&gt;'))
    assert.match(line, /<polyline [^>]*points="[\d.,\s]+"/)
    assert.equal(escapeHtml(`"'&`), '&quot;&#39;&amp;')
  })
})
