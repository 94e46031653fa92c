/**
 * The relay's egress policy: where relayed traffic may go. A destination is resolved
 * first and every address it resolves to is classified (with `ipaddr.js`); the relay
 * then connects to the address that was checked, never to the name again, so a DNS
 * answer cannot change between the check and the connection (no rebinding).
 *
 * Refused unless the operator allows them explicitly: every address that is not
 * global unicast (loopback, RFC 1918, CGNAT 100.64/10, link-local, multicast,
 * reserved, documentation, IPv6 ULA and link-local, IPv4-mapped and translated IPv6,
 * 6to4 and Teredo), the node's own addresses and the networks its interfaces are on,
 * and ports 25, 465 and 587 (mail submission: a relay must not become a spam cannon).
 */
import { lookup as dnsLookup } from 'node:dns/promises'
import os from 'node:os'
import { AbortError, ForbiddenError, InvalidArgumentError, type ShoalError } from '@shoal/protocol'
import ipaddr from 'ipaddr.js'

/** Ports refused by default. */
export const DEFAULT_DENIED_PORTS: readonly number[] = [25, 465, 587]

export interface EgressRules {
  /**
   * CIDRs opened on purpose although the built-in policy refuses them (e.g.
   * `127.0.0.1/32` for tests and benchmarks against local servers). Never a bypass of
   * `deny`, and logged at start.
   */
  allowCidrs?: string[]
  /** Ports opened although refused by default (e.g. 587 on a relay that allows mail). */
  allowPorts?: number[]
  /** CIDRs always refused (checked against every resolved address). */
  denyCidrs?: string[]
  /** Host names always refused: exact (`example.org`) or a suffix (`.example.org`). */
  denyHosts?: string[]
  /** Ports always refused, on top of the defaults. */
  denyPorts?: number[]
}

/** One address a name resolved to. */
export interface ResolvedAddress {
  address: string
  family: 4 | 6
}

/** Resolves a host name to all its addresses (the `dns.lookup(host, { all: true })` shape). */
export type Resolver = (host: string, options: { signal?: AbortSignal }) => Promise<ResolvedAddress[]>

/** A network an interface of this machine is on: its own address and prefix. */
export interface LocalNetwork {
  address: string
  prefix: number
}

export interface EgressPolicyComponents {
  /** Name resolution; the system resolver by default. Tests inject a fixed table. */
  resolve?: Resolver
  /** The node's own addresses and LANs; read from `os.networkInterfaces()` by default. */
  localNetworks?: () => LocalNetwork[]
}

/** Why a destination was refused: a stable, loggable tag. */
export type EgressRefusal =
  | 'port'
  | 'host-denied'
  | 'cidr-denied'
  | 'own-network'
  | 'userinfo'
  | 'unresolvable'
  | 'bad-target'
  | `range:${string}`

/** A destination the relay may connect to: the checked address, never the name. */
export interface EgressDecision {
  host: string
  port: number
  address: string
  family: 4 | 6
}

export interface EgressPolicy {
  /**
   * Resolves and checks a destination; returns the address to connect to.
   *
   * @throws ForbiddenError with `reason` (an `EgressRefusal`), AbortError
   */
  check(host: string, port: number, options?: { signal?: AbortSignal }): Promise<EgressDecision>
  /** The operator's explicit openings (for the start-up log). */
  readonly openings: { cidrs: string[]; ports: number[] }
}

/** A refusal with its machine-readable reason. */
export function egressRefused(
  reason: EgressRefusal,
  message: string,
): ShoalError & { reason: EgressRefusal } {
  return Object.assign(new ForbiddenError(message), { reason })
}

/** The reason of an egress refusal, if `err` is one. */
export function refusalOf(err: unknown): EgressRefusal | undefined {
  return (err as { reason?: EgressRefusal } | undefined)?.reason
}

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number]

function parseCidrs(name: string, list: readonly string[] | undefined): Cidr[] {
  return (list ?? []).map((text) => {
    try {
      return ipaddr.parseCIDR(text)
    } catch {
      throw new InvalidArgumentError(`${name}: "${text}" is not a CIDR (e.g. 127.0.0.1/32)`)
    }
  })
}

function parsePorts(name: string, list: readonly number[] | undefined): Set<number> {
  const out = new Set<number>()
  for (const p of list ?? []) {
    if (!Number.isSafeInteger(p) || p < 1 || p > 65535)
      throw new InvalidArgumentError(`${name}: ${p} is not a port`)
    out.add(p)
  }
  return out
}

function matches(ip: ipaddr.IPv4 | ipaddr.IPv6, cidrs: readonly Cidr[]): boolean {
  for (const [net, bits] of cidrs) if (ip.kind() === net.kind() && ip.match(net, bits)) return true
  return false
}

const systemResolve: Resolver = async (host) => {
  const all = await dnsLookup(host, { all: true, verbatim: true })
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }))
}

/** Every interface address of this machine with its prefix (own addresses and LANs). */
export function systemLocalNetworks(): LocalNetwork[] {
  const out: LocalNetwork[] = []
  for (const list of Object.values(os.networkInterfaces())) {
    for (const i of list ?? []) {
      const prefix = Number((i.cidr ?? '').split('/')[1])
      if (Number.isInteger(prefix)) out.push({ address: i.address.split('%')[0]!, prefix })
    }
  }
  return out
}

/**
 * Parses a host the way a URL parser does, so `2130706433`, `0x7f.1`, `0177.0.0.1` and
 * `127.1` are the IPv4 address they mean (not a name handed to a resolver that would
 * read them the same way after the check). Brackets are stripped from IPv6 literals.
 */
export function canonicalHost(host: string): string {
  let url: URL
  try {
    url = new URL(`http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}/`)
  } catch {
    throw egressRefused('bad-target', `"${host}" is not a host name or address`)
  }
  if (url.username !== '' || url.password !== '' || url.port !== '' || url.pathname !== '/')
    throw egressRefused('bad-target', `"${host}" is not a host name or address`)
  const h = url.hostname
  return h.startsWith('[') ? h.slice(1, -1) : h
}

/**
 * @example
 * const policy = createEgressPolicy({ denyHosts: ['.corp.example'] })
 * const { address, port } = await policy.check('example.org', 443)
 * net.connect({ host: address, port })
 */
export function createEgressPolicy(
  rules: EgressRules = {},
  components: EgressPolicyComponents = {},
): EgressPolicy {
  const allowCidrs = parseCidrs('allowCidrs', rules.allowCidrs)
  const denyCidrs = parseCidrs('denyCidrs', rules.denyCidrs)
  const allowPorts = parsePorts('allowPorts', rules.allowPorts)
  const deniedPorts = parsePorts('denyPorts', rules.denyPorts)
  for (const p of DEFAULT_DENIED_PORTS) if (!allowPorts.has(p)) deniedPorts.add(p)
  const denyHosts = (rules.denyHosts ?? []).map((h) => {
    if (typeof h !== 'string' || !/^\.?[a-z0-9.-]+$/i.test(h))
      throw new InvalidArgumentError(`denyHosts: "${h}" is not a host name or .suffix`)
    return h.toLowerCase()
  })
  const resolve = components.resolve ?? systemResolve
  const localNetworks = components.localNetworks ?? systemLocalNetworks
  let own: Cidr[] | undefined

  const checkAddress = (host: string, text: string): ipaddr.IPv4 | ipaddr.IPv6 => {
    let ip: ipaddr.IPv4 | ipaddr.IPv6
    try {
      ip = ipaddr.parse(text)
    } catch {
      throw egressRefused('bad-target', `${host} resolved to "${text}", not an address`)
    }
    if (matches(ip, denyCidrs)) throw egressRefused('cidr-denied', `${host} (${text}) is on a denied network`)
    if (matches(ip, allowCidrs)) return ip
    const range = ip.range()
    if (range !== 'unicast')
      throw egressRefused(`range:${range}`, `${host} (${text}) is a ${range} address, not a public one`)
    own ??= localNetworks().flatMap((n): Cidr[] => {
      try {
        const addr = ipaddr.parse(n.address)
        return [
          [addr, addr.kind() === 'ipv4' ? 32 : 128],
          [addr, n.prefix],
        ]
      } catch {
        return []
      }
    })
    if (matches(ip, own))
      throw egressRefused('own-network', `${host} (${text}) is this node or its local network`)
    return ip
  }

  return {
    openings: { cidrs: rules.allowCidrs ?? [], ports: [...allowPorts] },
    async check(rawHost, port, options = {}) {
      if (!Number.isSafeInteger(port) || port < 1 || port > 65535)
        throw egressRefused('bad-target', `port ${port} is not a port`)
      if (deniedPorts.has(port)) throw egressRefused('port', `port ${port} is refused by this relay`)
      const host = canonicalHost(rawHost).toLowerCase()
      for (const d of denyHosts) {
        if (host === d || (d.startsWith('.') && (host.endsWith(d) || host === d.slice(1))))
          throw egressRefused('host-denied', `${host} is denied by this relay`)
      }
      if (ipaddr.isValid(host) && (ipaddr.IPv4.isValidFourPartDecimal(host) || ipaddr.IPv6.isValid(host))) {
        const ip = checkAddress(host, host)
        return { host, port, address: ip.toString(), family: ip.kind() === 'ipv4' ? 4 : 6 }
      }
      if (options.signal?.aborted) throw new AbortError('aborted before resolving')
      let answers: ResolvedAddress[]
      try {
        answers = await resolve(host, options)
      } catch (err) {
        if (options.signal?.aborted) throw new AbortError('aborted while resolving', { cause: err })
        throw egressRefused('unresolvable', `${host} does not resolve`)
      }
      if (answers.length === 0) throw egressRefused('unresolvable', `${host} does not resolve`)
      // every answer must pass: a name that also points inside is refused outright
      const checked = answers.map((a) => checkAddress(host, a.address))
      const first = checked[0]!
      return { host, port, address: first.toString(), family: first.kind() === 'ipv4' ? 4 : 6 }
    },
  }
}
