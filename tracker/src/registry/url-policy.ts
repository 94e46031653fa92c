/**
 * Which node URLs the tracker will register and probe. The tracker makes requests to
 * addresses strangers give it, so by default it refuses loopback, private, link-local,
 * shared, multicast and reserved addresses — both as literals in the URL and as what a
 * host name resolves to at connect time (`safeLookup`).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import { BlockList, isIP } from 'node:net'
import { ForbiddenError } from '@shoal/protocol'

function blockList(): BlockList {
  const b = new BlockList()
  for (const [net, prefix] of [
    ['0.0.0.0', 8],
    ['10.0.0.0', 8],
    ['100.64.0.0', 10],
    ['127.0.0.0', 8],
    ['169.254.0.0', 16],
    ['172.16.0.0', 12],
    ['192.0.0.0', 24],
    ['192.168.0.0', 16],
    ['198.18.0.0', 15],
    ['224.0.0.0', 4],
    ['240.0.0.0', 4],
  ] as const) {
    b.addSubnet(net, prefix, 'ipv4')
  }
  for (const [net, prefix] of [
    ['::', 128],
    ['::1', 128],
    ['fc00::', 7],
    ['fe80::', 10],
    ['ff00::', 8],
    ['64:ff9b::', 96],
  ] as const) {
    b.addSubnet(net, prefix, 'ipv6')
  }
  return b
}

let blocked: BlockList | undefined

/** True for an IP literal on a loopback, private, link-local or reserved network. */
export function isPrivateAddress(address: string): boolean {
  blocked ??= blockList()
  const bare = address.startsWith('[') ? address.slice(1, -1) : address
  const family = isIP(bare)
  if (family === 4) return blocked.check(bare, 'ipv4')
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)
    if (mapped !== null) return blocked.check(mapped[1]!, 'ipv4')
    return blocked.check(bare, 'ipv6')
  }
  return false
}

/** Throws `ForbiddenError` when a node URL names a private host literally (or `localhost`). */
export function checkNodeUrl(url: string, allowPrivate: boolean): void {
  if (allowPrivate) return
  const host = new URL(url).hostname.toLowerCase()
  if (host === 'localhost' || host.endsWith('.localhost') || isPrivateAddress(host)) {
    throw new ForbiddenError(`node URLs on private or loopback addresses are not accepted (${host})`)
  }
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void

/** A `dns.lookup` for outgoing connections that refuses private results. */
export function safeLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err !== null) return callback(err, '')
    const list = addresses as LookupAddress[]
    const bad = list.find((a) => isPrivateAddress(a.address))
    if (bad !== undefined) {
      const e = new Error(`${hostname} resolves to a private address`) as NodeJS.ErrnoException
      e.code = 'ECONNREFUSED'
      return callback(e, '')
    }
    if (options.all === true) return callback(null, list)
    const first = list[0]
    if (first === undefined)
      return callback(Object.assign(new Error('no address'), { code: 'ENOTFOUND' }), '')
    callback(null, first.address, first.family)
  })
}
