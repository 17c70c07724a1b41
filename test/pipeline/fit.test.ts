import assert from 'node:assert/strict'

import {INVALID, MISSING, toBoolean, toInteger, toNumber, toText} from '../../src/pipeline/coerce.js'
import {categoriesOf, mean, median, minMax, mostFrequent, std} from '../../src/pipeline/fit.js'

describe('pipeline: value coercion', () => {
  const numbers: [unknown, number | typeof INVALID][] = [
    [41, 41],
    ['41', 41],
    ['-2.5e3', -2500],
    ['.5', 0.5],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['abc', INVALID],
    ['0x1f', INVALID],
    [' 12', INVALID],
    [true, INVALID],
    [[1], INVALID],
  ]
  for (const [value, expected] of numbers)
    it(`number: ${JSON.stringify(value)} → ${String(expected)}`, () => assert.equal(toNumber(value), expected))

  for (const missing of [null, undefined, '', 'NaN', Number.NaN]) {
    it(`number: ${String(JSON.stringify(missing))} is missing (NaN)`, () => assert.ok(Number.isNaN(toNumber(missing))))
  }

  it('integer: accepts "7" and 7.0, refuses 7.5 and Infinity', () => {
    assert.equal(toInteger('7'), 7)
    assert.equal(toInteger(7.0), 7)
    assert.equal(toInteger(7.5), INVALID)
    assert.equal(toInteger('Infinity'), INVALID)
  })

  const booleans: [unknown, number | typeof INVALID][] = [
    [true, 1],
    [false, 0],
    ['true', 1],
    ['False', 0],
    ['1', 1],
    ['0', 0],
    [1, 1],
    ['yes', INVALID],
    [2, INVALID],
  ]
  for (const [value, expected] of booleans)
    it(`boolean: ${JSON.stringify(value)} → ${String(expected)}`, () => assert.equal(toBoolean(value), expected))

  it('text: strings stay, numbers become their text, "" and null are missing, objects are invalid', () => {
    assert.equal(toText('S'), 'S')
    assert.equal(toText(1), '1')
    assert.equal(toText(''), MISSING)
    assert.equal(toText(null), MISSING)
    assert.equal(toText({a: 1}), INVALID)
  })
})

describe('pipeline: fitted statistics', () => {
  it('mean and population std (ddof=0) skip missing values', () => {
    assert.equal(mean([2, 4, 4, 4, 5, 5, 7, 9, Number.NaN]), 5)
    assert.equal(std([2, 4, 4, 4, 5, 5, 7, 9, Number.NaN]), 2)
  })

  it('a constant column has std 1, so it is only centred (as StandardScaler does)', () =>
    assert.equal(std([3, 3, 3]), 1))

  it('median of odd and even counts', () => {
    assert.equal(median([5, 1, 3]), 3)
    assert.equal(median([4, 1, 3, 2]), 2.5)
  })

  it('most frequent breaks ties towards the smallest value', () => {
    assert.equal(mostFrequent([3, 1, 3, 1, 2]), 1)
    assert.equal(mostFrequent(['b', 'a', 'b']), 'b')
  })

  it('min/max and sorted distinct categories', () => {
    assert.deepEqual(minMax([3, Number.NaN, -1, 8]), {min: -1, max: 8})
    assert.deepEqual(categoriesOf(['west', 'east', 'west', 'north']), ['east', 'north', 'west'])
  })
})
