import { describe, expect, it } from 'vitest'
import { contentRange, parseRange, unsatisfiedRange } from '../src/http/range.ts'

describe('parseRange', () => {
  it.each([
    ['bytes=0-99', 1000, { start: 0, end: 100 }],
    ['bytes=990-', 1000, { start: 990, end: 1000 }],
    ['bytes=-10', 1000, { start: 990, end: 1000 }],
    ['bytes=-5000', 1000, { start: 0, end: 1000 }],
    ['bytes=500-99999', 1000, { start: 500, end: 1000 }],
    ['BYTES= 1-1', 1000, { start: 1, end: 2 }],
  ])('%s of %d bytes', (header, size, range) => {
    expect(parseRange(header, size)).toEqual({ kind: 'range', range })
  })

  it.each([
    ['bytes=1000-', 1000],
    ['bytes=5000-6000', 1000],
    ['bytes=-0', 1000],
    ['bytes=0-', 0],
    ['bytes=-1', 0],
  ])('%s of %d bytes is unsatisfiable', (header, size) => {
    expect(parseRange(header, size)).toEqual({ kind: 'unsatisfiable' })
  })

  it.each([
    [undefined],
    ['items=0-1'],
    ['bytes=0-1,5-6'],
    ['bytes=abc'],
    ['bytes=5-1'],
    ['bytes=1.5-2'],
    ['bytes=-'],
    ['bytes=99999999999999999999-'],
  ])('ignores %s (serves the whole representation)', (header) => {
    expect(parseRange(header, 1000)).toEqual({ kind: 'none' })
  })

  it('formats Content-Range', () => {
    expect(contentRange({ start: 0, end: 100 }, 1000)).toBe('bytes 0-99/1000')
    expect(unsatisfiedRange(1000)).toBe('bytes */1000')
  })
})
