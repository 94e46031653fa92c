/**
 * Which tracker's tickets the node honours, and how long its epochs are. Never taken
 * from a client: either the operator pins the tracker's address (`trackerAddress`), or
 * the node asks the tracker it is configured with (`trackerUrl`, the operator's choice)
 * at `GET /v1/epochs/current`, whose answer names the tracker's signing address
 * (`issuer`) and `epochSeconds` (docs/receipts.md).
 */
import { InvalidFormatError, UpstreamError } from '@shoal/protocol'
import { type Address, getAddress, isAddress } from 'viem'

export interface TrackerIdentity {
  /** The tracker's ticket-signing address, or `undefined` when it cannot be known yet. */
  issuer(options?: { signal?: AbortSignal }): Promise<Address | undefined>
  /** Seconds per epoch: the tracker's when it said, else the configured one. */
  epochSeconds(): number
}

export interface TrackerIdentityInit {
  trackerAddress?: Address | undefined
  trackerUrl?: string | undefined
  epochSeconds: number
  /** How long a failed look-up is not retried (ms). Default 30 s. */
  retryMs?: number
  timeoutMs?: number
}

const DEFAULT_RETRY_MS = 30_000
const DEFAULT_TIMEOUT_MS = 5_000

/**
 * @example
 * const identity = createTrackerIdentity({ trackerUrl: 'https://tracker.example', epochSeconds: 3600 })
 * const issuer = await identity.issuer()
 */
export function createTrackerIdentity(
  init: TrackerIdentityInit,
  components: { fetch?: typeof globalThis.fetch } = {},
): TrackerIdentity {
  const doFetch = components.fetch ?? globalThis.fetch
  const retryMs = init.retryMs ?? DEFAULT_RETRY_MS
  let epochSeconds = init.epochSeconds
  let known: Address | undefined =
    init.trackerAddress === undefined ? undefined : getAddress(init.trackerAddress)
  let pending: Promise<Address | undefined> | undefined
  let failedAt = Number.NEGATIVE_INFINITY

  const ask = async (): Promise<Address | undefined> => {
    const url = `${init.trackerUrl}/v1/epochs/current`
    let res: Response
    try {
      res = await doFetch(url, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(init.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      })
    } catch (cause) {
      throw new UpstreamError(`tracker at ${init.trackerUrl} did not answer`, { cause })
    }
    if (!res.ok) {
      await res.body?.cancel()
      throw new UpstreamError(`tracker answered ${res.status} to GET /v1/epochs/current`)
    }
    const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined
    if (typeof body !== 'object' || body === null)
      throw new InvalidFormatError('tracker answered garbage to GET /v1/epochs/current')
    if (Number.isSafeInteger(body.epochSeconds) && (body.epochSeconds as number) > 0)
      epochSeconds = body.epochSeconds as number
    if (typeof body.issuer !== 'string' || !isAddress(body.issuer, { strict: false }))
      throw new InvalidFormatError('the tracker does not name its ticket issuer at GET /v1/epochs/current')
    return getAddress(body.issuer)
  }

  return {
    async issuer() {
      if (known !== undefined) return known
      if (init.trackerUrl === undefined) return undefined
      if (Date.now() - failedAt < retryMs) return undefined
      pending ??= ask().then(
        (address) => {
          known = address
          pending = undefined
          return address
        },
        () => {
          failedAt = Date.now()
          pending = undefined
          return undefined
        },
      )
      return pending
    },
    epochSeconds: () => epochSeconds,
  }
}
