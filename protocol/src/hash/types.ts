/**
 * The contract both SHA-256 backends (`#sha256`) fulfil. `package.json` "imports" picks
 * `sha256-node.ts` (node:crypto) under the `node` condition and `sha256-web.ts`
 * (WebCrypto, plus viem's pure-JS SHA-256 for 65-byte tree nodes) everywhere else, so
 * nothing reachable from `@shoal/protocol` imports `node:` in a browser.
 */

/** A value, or a promise of it: sync where the platform allows, async where it must be. */
export type MaybePromise<T> = T | Promise<T>

/**
 * Hashes one chunk into its leaf, SHA-256(0x00 ‖ bytes), from pieces as they arrive.
 *
 * Node feeds every piece straight into an incremental hash (no copy); WebCrypto has no
 * incremental API, so the web backend copies pieces into one chunk buffer and hashes it
 * at `digest()`. Either way `digest()` takes its snapshot synchronously: the hasher is
 * ready for the next chunk as soon as `digest()` returns, even while a web digest is
 * still pending, and a caller may mutate or release the pieces afterwards.
 */
export interface LeafHasher {
  /** Adds bytes of the current chunk. */
  update(piece: Uint8Array): void
  /** The leaf hash of everything added since the previous `digest()`; resets the hasher. */
  digest(): MaybePromise<Uint8Array>
}

/** What `#sha256` exports. Checked against both implementations in the tests. */
export interface Sha256Backend {
  /** Which implementation this is. */
  readonly SHA256_BACKEND: 'node' | 'web'
  /** A leaf hasher; `capacity` is the chunk size, a hint for the web backend's buffer. */
  createLeafHasher(capacity?: number): LeafHasher
  /**
   * The leaf hash SHA-256(0x00 ‖ UTF-8 of `text`) of one short, well-formed text,
   * synchronously: the leaves of a site manifest's entry tree (a few hundred bytes of JSON
   * each). Chunks go through `createLeafHasher`, which is native in browsers too.
   */
  hashTextLeaf(text: string): Uint8Array
  /**
   * Interior nodes of one tree level, synchronously. `pairs` holds k concatenated
   * (left ‖ right) 64-byte pairs; `out` receives k 32-byte hashes SHA-256(0x01 ‖ pair).
   */
  hashPairs(pairs: Uint8Array, out: Uint8Array): void
}
