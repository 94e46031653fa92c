/** Named defaults of the origin cache. */

const MiB = 1024 * 1024

/** Name the node gives itself in `Via`. */
export const DEFAULT_VIA_NAME = 'shoal'
/** Share of the time since `Last-Modified` given as heuristic freshness (RFC 9111 §4.2.2). */
export const DEFAULT_HEURISTIC_FRACTION = 0.1
/** Upper bound of heuristic freshness, in seconds: one day. */
export const DEFAULT_HEURISTIC_MAX_SECONDS = 24 * 60 * 60
/**
 * How long a request waits for a fill of the same object already in flight before it
 * fetches on its own without caching (nginx's `proxy_cache_lock_timeout`).
 */
export const DEFAULT_COLLAPSE_TIMEOUT_MS = 5_000
/**
 * How much of a cacheable object the node keeps downloading once the client that
 * asked for it is gone (disconnected, or served a range, a 304 or a HEAD): a fill with
 * more left to read than this is abandoned.
 */
export const DEFAULT_DETACHED_FILL_MAX_BYTES = 64 * MiB
