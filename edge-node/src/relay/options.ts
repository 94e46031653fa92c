/** The relay's options: plain data with named defaults, validated at construction. */
import { InvalidArgumentError } from '@shoal/protocol'
import { createEgressPolicy, type EgressRules } from './egress-policy.ts'

export const DEFAULT_RELAY_HOST = '127.0.0.1'
export const DEFAULT_RELAY_PORT = 7481
export const DEFAULT_RELAY_MAX_CONCURRENT_PER_CLIENT = 16
export const DEFAULT_RELAY_IDLE_TIMEOUT_MS = 60_000
export const DEFAULT_RELAY_CONNECT_TIMEOUT_MS = 10_000
export const DEFAULT_RELAY_MAX_HEADER_BYTES = 16 * 1024

export interface RelayOptions {
  /** Listen address of the relay (its own port, apart from the edge). */
  host?: string
  port?: number
  /**
   * The URL clients reach the relay at, announced in the node record as
   * `/ip4|ip6|dns/<host>/tcp/<port>/http`; defaults to the listen address.
   */
  publicUrl?: string
  /** Addresses whose tickets are accepted: the tracker(s) the node registers with. Required. */
  issuers: string[]
  /** Relay-wide cap in bytes per second (both directions); unlimited when absent. */
  bytesPerSecond?: number
  /** Per-client cap in bytes per second (both directions); unlimited when absent. */
  clientBytesPerSecond?: number
  /** Tunnels plus in-flight forwarded requests one client may hold at once. */
  maxConcurrentPerClient?: number
  /** A tunnel or forwarded exchange with no byte either way for this long is closed. */
  idleTimeoutMs?: number
  /** Longest wait for the destination to accept a connection. */
  connectTimeoutMs?: number
  maxHeaderBytes?: number
  /** Operator allow and deny lists on top of the built-in policy. */
  egress?: EgressRules
}

export type ResolvedRelayOptions = Required<
  Omit<RelayOptions, 'publicUrl' | 'bytesPerSecond' | 'clientBytesPerSecond'>
> &
  Pick<RelayOptions, 'publicUrl' | 'bytesPerSecond' | 'clientBytesPerSecond'>

function int(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
) {
  const v = value ?? fallback
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw new InvalidArgumentError(`relay.${name} must be an integer from ${min} to ${max}, got ${v}`)
  return v
}

/**
 * @example
 * const options = resolveRelayOptions({ port: 7481, issuers: [trackerAddress] })
 */
export function resolveRelayOptions(init: RelayOptions): ResolvedRelayOptions {
  if (typeof init !== 'object' || init === null)
    throw new InvalidArgumentError('relay options must be an object')
  if (!Array.isArray(init.issuers) || init.issuers.length === 0)
    throw new InvalidArgumentError('relay.issuers must list the ticket issuers (tracker addresses) to trust')
  for (const a of init.issuers)
    if (typeof a !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(a))
      throw new InvalidArgumentError(`relay.issuers: "${String(a)}" is not an 0x address`)
  if (init.publicUrl !== undefined) {
    let url: URL | undefined
    try {
      url = new URL(init.publicUrl)
    } catch {}
    if (
      url === undefined ||
      url.protocol !== 'http:' ||
      url.pathname !== '/' ||
      url.search !== '' ||
      url.username !== ''
    )
      throw new InvalidArgumentError(
        `relay.publicUrl must be a bare http://host:port URL, got "${init.publicUrl}"`,
      )
  }
  // the rules are checked here (bad CIDRs, ports, hosts) so a bad config fails at start
  createEgressPolicy(init.egress ?? {})
  return {
    host: init.host ?? DEFAULT_RELAY_HOST,
    port: int('port', init.port, DEFAULT_RELAY_PORT, 0, 65535),
    publicUrl: init.publicUrl,
    issuers: [...init.issuers],
    bytesPerSecond:
      init.bytesPerSecond === undefined ? undefined : int('bytesPerSecond', init.bytesPerSecond, 0, 1),
    clientBytesPerSecond:
      init.clientBytesPerSecond === undefined
        ? undefined
        : int('clientBytesPerSecond', init.clientBytesPerSecond, 0, 1),
    maxConcurrentPerClient: int(
      'maxConcurrentPerClient',
      init.maxConcurrentPerClient,
      DEFAULT_RELAY_MAX_CONCURRENT_PER_CLIENT,
      1,
    ),
    idleTimeoutMs: int('idleTimeoutMs', init.idleTimeoutMs, DEFAULT_RELAY_IDLE_TIMEOUT_MS, 1),
    connectTimeoutMs: int('connectTimeoutMs', init.connectTimeoutMs, DEFAULT_RELAY_CONNECT_TIMEOUT_MS, 1),
    maxHeaderBytes: int('maxHeaderBytes', init.maxHeaderBytes, DEFAULT_RELAY_MAX_HEADER_BYTES, 1024),
    egress: init.egress ?? {},
  }
}

/**
 * The multiaddr a node record carries to announce its relay: `/ip4/<a>/tcp/<p>/http`
 * (or `/ip6/…`, `/dns/…`). The tracker reads it back into a relay URL.
 *
 * @example
 * relayMultiaddr('http://203.0.113.7:7481') // '/ip4/203.0.113.7/tcp/7481/http'
 */
export function relayMultiaddr(url: string): string {
  const u = new URL(url)
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname
  const port = u.port === '' ? 80 : Number(u.port)
  const proto = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns'
  return `/${proto}/${host}/tcp/${port}/http`
}
