/**
 * The tracker's HTTP API as typed calls. Browser-safe (global `fetch` by default); the
 * edge node uses it too, to fetch site manifests. Every answer from the tracker is
 * checked: manifests are decoded strictly here and verified by the caller.
 */
import {
  decodeSiteManifest,
  ERROR_CODES,
  type ErrorCode,
  InvalidArgumentError,
  parseErrorBody,
  ShoalError,
  type Signed,
  type SiteManifest,
  UpstreamError,
} from '@shoal/protocol'

export interface TrackerClientInit {
  /** Base URL of the tracker, e.g. `http://127.0.0.1:7470`. */
  url: string
  /** A fetch implementation; defaults to the global one. */
  fetch?: typeof globalThis.fetch
  /** Per-request timeout in milliseconds (default 10 s). */
  timeoutMs?: number
}

export interface TrackerClient {
  readonly url: string
  /** The site's signed manifest (decoded, not yet verified), or `undefined` when the tracker has none. */
  getSite(site: string, options?: { signal?: AbortSignal }): Promise<Signed<SiteManifest> | undefined>
  /** Same as `getSite`: the shape the edge node's manifest registry asks for. */
  fetchManifest(site: string, options?: { signal?: AbortSignal }): Promise<Signed<SiteManifest> | undefined>
}

export const DEFAULT_TRACKER_TIMEOUT_MS = 10_000

/** Turns a non-2xx answer into the typed error the tracker named (or an UpstreamError). */
async function errorOf(res: Response): Promise<Error> {
  const body = parseErrorBody(await res.json().catch(() => undefined))
  if (body !== undefined && Object.hasOwn(ERROR_CODES, body.error.code)) {
    return new ShoalError(body.error.code as ErrorCode, `tracker: ${body.error.message}`)
  }
  return new UpstreamError(`tracker answered ${res.status}`)
}

/**
 * @example
 * const tracker = createTrackerClient({ url: 'http://127.0.0.1:7470' })
 * const signed = await tracker.getSite('blog')
 */
export function createTrackerClient(init: TrackerClientInit): TrackerClient {
  let base: URL
  try {
    base = new URL(init.url)
  } catch {
    throw new InvalidArgumentError(`tracker url "${init.url}" is not an absolute URL`)
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new InvalidArgumentError('tracker url must be http or https')
  }
  const root = base.href.replace(/\/$/, '')
  const doFetch = init.fetch ?? globalThis.fetch
  const timeoutMs = init.timeoutMs ?? DEFAULT_TRACKER_TIMEOUT_MS

  const get = async (path: string, signal?: AbortSignal): Promise<Response> => {
    const timeout = AbortSignal.timeout(timeoutMs)
    try {
      return await doFetch(`${root}${path}`, {
        headers: { accept: 'application/json' },
        signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
      })
    } catch (err) {
      throw new UpstreamError(`tracker at ${root} did not answer`, { cause: err })
    }
  }

  const getSite = async (site: string, options: { signal?: AbortSignal } = {}) => {
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(site))
      throw new InvalidArgumentError(`"${site}" is not a site name`)
    const res = await get(`/v1/sites/${site}`, options.signal)
    if (res.status === 404) {
      await res.body?.cancel()
      return undefined
    }
    if (!res.ok) throw await errorOf(res)
    return decodeSiteManifest(await res.text())
  }

  return { url: root, getSite, fetchManifest: getSite }
}
