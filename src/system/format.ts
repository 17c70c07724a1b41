// Small formatters for human output.
import {stripVTControlCharacters} from 'node:util'

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

/** Columns of a table: `right` aligns numbers on their last digit, under a header aligned the same way. */
export interface TableOptions {
  right?: readonly number[]
}

/** A plain-text table: columns padded to their widest cell, measured as it shows (colour escapes take no room). */
export function table(headers: string[], rows: string[][], options: TableOptions = {}): string {
  const widths = headers.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] ?? ''))))
  const right = new Set(options.right)
  const line = (cells: string[]) =>
    cells
      .map((c = '', i) => {
        const pad = ' '.repeat(widths[i] - width(c))
        return right.has(i) ? pad + c : c + pad
      })
      .join('  ')
      .trimEnd()
  return [line(headers), ...rows.map(line)].join('\n')
}

/** Width on a terminal: escapes stripped (every character here is one column wide). */
export function width(text: string): number {
  return stripVTControlCharacters(text).length
}

/** 12,345.6: thousands separated, at most `digits` decimals (fewer when the value has fewer). */
export function formatNumber(value: number, digits = 2): string {
  return value.toLocaleString('en-US', {maximumFractionDigits: digits})
}
