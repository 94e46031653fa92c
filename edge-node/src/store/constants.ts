/** Named defaults of the cache tiers. */

const KiB = 1024
const MiB = 1024 * KiB

/** Largest object the memory tier holds: `min(DEFAULT_MEMORY_MAX_OBJECT_BYTES, maxBytes / 8)`. */
export const DEFAULT_MEMORY_MAX_OBJECT_BYTES = 8 * MiB
/** Divisor of the memory bound that gives the default largest object. */
export const MEMORY_MAX_OBJECT_DIVISOR = 8
/**
 * Bytes charged per memory entry on top of its body, key and metadata text: the
 * entry object, the frozen metadata objects and the LRU's bookkeeping.
 */
export const MEMORY_ENTRY_OVERHEAD_BYTES = 512

/** Largest object the disk tier holds by default: a quarter of its bound. */
export const DISK_MAX_OBJECT_DIVISOR = 4
/** Largest metadata (as JSON text) of one entry. */
export const DEFAULT_MAX_META_BYTES = 64 * KiB
/** Longest key, in UTF-16 code units (keys derive from URLs and Vary values). */
export const MAX_KEY_LENGTH = 16 * KiB
/** Files are charged in whole blocks of this size, as a filesystem stores them. */
export const DEFAULT_BLOCK_BYTES = 4 * KiB
/** Size of each read of a body streamed from disk. */
export const DEFAULT_READ_CHUNK_BYTES = 128 * KiB
/** Writes are coalesced into buffers of this size before they reach the file. */
export const DEFAULT_WRITE_BUFFER_BYTES = 256 * KiB
/**
 * Bodies up to this size still in memory at the commit are stored inside their header
 * file (one file per object, one file creation per miss). 256 KiB is the write buffer:
 * any body that never left it qualifies.
 */
export const DEFAULT_INLINE_MAX_BYTES = 256 * KiB
/** Files examined in parallel when the index is rebuilt at start. */
export const DEFAULT_SCAN_CONCURRENCY = 16
/** Largest body `DiskEntry.readAll()` reads into one buffer unless told otherwise. */
export const DEFAULT_READ_ALL_MAX_BYTES = 64 * MiB
