/**
 * Fast non-cryptographic hashing for placement: murmur3's 32-bit finalizer built on
 * `Math.imul`, no allocation. Rendezvous draws `u ∈ (0, 1)` from the hash of a
 * (CID, candidate) pair; the CID part is the first 8 bytes of the CID's Merkle root,
 * already uniform because it is SHA-256 output.
 */

/** murmur3 fmix32: a bijection on 32-bit integers with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** Hash of a (CID, candidate) pair: two fmix rounds keyed by the CID's two words. */
export function pairHash(candidate: number, cidA: number, cidB: number): number {
  return fmix32(fmix32(candidate ^ cidA) ^ cidB)
}

/** 2^-32 */
const INV_2_32 = 1 / 4_294_967_296

/**
 * Weighted-rendezvous key of a candidate with weight `w > 0`: `−ln(u) / w`, an
 * exponential variable of rate `w`. The smallest key wins, and a candidate wins with
 * probability `w / Σw` — the property that makes placement proportional to weight.
 */
export function rendezvousKey(hash: number, weight: number): number {
  return -Math.log((hash + 0.5) * INV_2_32) / weight
}

/** FNV-1a over the string's UTF-16 code units, ASCII-lowercased, then fmix32 with a seed. */
export function hashString(text: string, seed: number): number {
  let h = 0x811c9dc5 ^ seed
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i)
    if (c >= 65 && c <= 90) c += 32
    h = Math.imul(h ^ c, 0x01000193)
  }
  return fmix32(h)
}

/** The two 32-bit words a CID contributes to every pair hash, from its root. */
export function cidWords(root: Uint8Array, seed: number): [number, number] {
  const a = ((root[0]! << 24) | (root[1]! << 16) | (root[2]! << 8) | root[3]!) >>> 0
  const b = ((root[4]! << 24) | (root[5]! << 16) | (root[6]! << 8) | root[7]!) >>> 0
  return [fmix32(a ^ seed), fmix32(b ^ Math.imul(seed, 0x9e3779b1))]
}
