/** Default chunk size: 256 KiB, a good balance of proof size and per-chunk overhead. */
export const DEFAULT_CHUNK_SIZE = 262_144
/** Smallest allowed chunk size, 1 KiB (2^10). */
export const MIN_CHUNK_SIZE = 1024
/** Largest allowed chunk size, 16 MiB (2^24). */
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024
/** Largest content size a CID can describe: 2^53 − 1, the largest exact JS integer. */
export const MAX_CONTENT_SIZE = Number.MAX_SAFE_INTEGER
/** Length in bytes of a leaf hash, an interior node and a CID root (SHA-256). */
export const HASH_SIZE = 32
/** The only CID version there is. */
export const CID_VERSION = 1
/** First character of every CID in text form. */
export const CID_TEXT_PREFIX = 's'
