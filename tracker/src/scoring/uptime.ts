/**
 * The uptime window: a ring of `window` bits per node (1 = answered), stored in
 * `ceil(window / 32)` 32-bit words, with the write position, how many bits are filled
 * and how many of those are set. Recording a probe is O(1) whatever the window size:
 * the bit it overwrites is read first and the answered count adjusted.
 */

/** 32-bit words one node's window takes. */
export function wordsFor(window: number): number {
  return Math.ceil(window / 32)
}

/** The ring arrays the functions below work on (one entry, or `words` words, per slot). */
export interface UptimeRing {
  readonly window: number
  readonly words: number
  bits: Uint32Array
  pos: Uint16Array
  fill: Uint16Array
  answered: Uint16Array
}

/** Records one probe outcome for `slot`. */
export function recordOutcome(ring: UptimeRing, slot: number, answered: boolean): void {
  const pos = ring.pos[slot]!
  const word = slot * ring.words + (pos >>> 5)
  const bit = 1 << (pos & 31)
  const bits = ring.bits
  if (ring.fill[slot]! === ring.window) {
    if ((bits[word]! & bit) !== 0) ring.answered[slot] = ring.answered[slot]! - 1
  } else {
    ring.fill[slot] = ring.fill[slot]! + 1
  }
  if (answered) {
    bits[word] = bits[word]! | bit
    ring.answered[slot] = ring.answered[slot]! + 1
  } else {
    bits[word] = bits[word]! & ~bit
  }
  ring.pos[slot] = pos + 1 === ring.window ? 0 : pos + 1
}

/** Empties `slot`'s window. */
export function clearRing(ring: UptimeRing, slot: number): void {
  ring.bits.fill(0, slot * ring.words, (slot + 1) * ring.words)
  ring.pos[slot] = 0
  ring.fill[slot] = 0
  ring.answered[slot] = 0
}

/** The window as text, oldest first: `'1'` answered, `'0'` missed. */
export function ringToString(ring: UptimeRing, slot: number): string {
  const fill = ring.fill[slot]!
  const start = fill === ring.window ? ring.pos[slot]! : 0
  let out = ''
  for (let i = 0; i < fill; i++) {
    const p = (start + i) % ring.window
    out += (ring.bits[slot * ring.words + (p >>> 5)]! >>> (p & 31)) & 1 ? '1' : '0'
  }
  return out
}

/** Fills `slot`'s window from text made by `ringToString` (only the newest `window` outcomes count). */
export function ringFromString(ring: UptimeRing, slot: number, text: string): void {
  clearRing(ring, slot)
  const from = Math.max(0, text.length - ring.window)
  const base = slot * ring.words
  let answered = 0
  // Outcome i (oldest first) goes to bit i: the ring then reads back from position 0.
  for (let i = from; i < text.length; i++) {
    if (text.charCodeAt(i) !== 49) continue
    const p = i - from
    ring.bits[base + (p >>> 5)] = ring.bits[base + (p >>> 5)]! | (1 << (p & 31))
    answered++
  }
  const fill = text.length - from
  ring.fill[slot] = fill
  ring.answered[slot] = answered
  ring.pos[slot] = fill === ring.window ? 0 : fill
}
