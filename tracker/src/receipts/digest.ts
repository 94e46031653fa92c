/**
 * The EIP-712 digest of a `BandwidthReceipt` without viem's generic encoder: the struct
 * has a fixed layout (eight 32-byte words: type hash, node, client, session, bytes,
 * epoch, ticket, kind), so it is written into one preallocated buffer and hashed with
 * keccak-256 from @noble/hashes; the digest is keccak(0x1901 ‖ domain separator ‖
 * struct hash). Tests check it against viem's `hashTypedData` (`hashBandwidthReceipt`).
 * Settlement computes a million of these per epoch.
 */

import { keccak_256 } from '@noble/hashes/sha3'
import {
  type BandwidthReceipt,
  bandwidthReceiptTypes,
  InvalidFormatError,
  SHOAL_DOMAIN,
} from '@shoal/protocol'
import { hashDomain, keccak256, toHex } from 'viem'

const TYPE_STRING = `BandwidthReceipt(${bandwidthReceiptTypes.BandwidthReceipt.map((f) => `${f.type} ${f.name}`).join(',')})`
const TYPE_HASH = hexBytes(keccak256(toHex(TYPE_STRING)))
const DOMAIN_SEPARATOR = hexBytes(
  hashDomain({
    domain: SHOAL_DOMAIN,
    types: {
      EIP712Domain: [
        { name: 'name', type: 'string' },
        { name: 'version', type: 'string' },
      ],
    },
  }),
)

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex.slice(2), 'hex'))
}

const HEX = /^0x[0-9a-fA-F]*$/

/** Writes `hex` (0x + 2·n digits) right-aligned into `out[offset … offset + 32)`. */
function putHex(out: Uint8Array, offset: number, hex: string, bytes: number): void {
  if (hex.length !== 2 + 2 * bytes || !HEX.test(hex))
    throw new InvalidFormatError(`not ${bytes} bytes of hex`)
  out.fill(0, offset, offset + 32 - bytes)
  Buffer.from(out.buffer, out.byteOffset + offset + 32 - bytes, bytes).write(hex.slice(2), 'hex')
}

/** Writes a safe integer big-endian into the 32-byte word at `offset`. */
function putUint(out: Uint8Array, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidFormatError('not a uint')
  out.fill(0, offset, offset + 24)
  const hi = Math.floor(value / 2 ** 32)
  const lo = value >>> 0
  out[offset + 24] = hi >>> 24
  out[offset + 25] = hi >>> 16
  out[offset + 26] = hi >>> 8
  out[offset + 27] = hi
  out[offset + 28] = lo >>> 24
  out[offset + 29] = lo >>> 16
  out[offset + 30] = lo >>> 8
  out[offset + 31] = lo
}

/** A digest computer with its own buffers: one per worker. */
export interface ReceiptDigester {
  /** The digest (32 bytes) of a receipt. The returned array is reused: copy it to keep it. */
  digest(receipt: BandwidthReceipt): Uint8Array
}

/**
 * @example
 * const d = createReceiptDigester()
 * const digest = Buffer.from(d.digest(receipt)).toString('hex')
 */
export function createReceiptDigester(): ReceiptDigester {
  const struct = new Uint8Array(256)
  struct.set(TYPE_HASH, 0)
  const outer = new Uint8Array(66)
  outer[0] = 0x19
  outer[1] = 0x01
  outer.set(DOMAIN_SEPARATOR, 2)
  return {
    digest(r) {
      putHex(struct, 32, r.node, 20)
      putHex(struct, 64, r.client, 20)
      putHex(struct, 96, r.session, 32)
      putUint(struct, 128, r.bytes)
      putUint(struct, 160, r.epoch)
      putHex(struct, 192, r.ticket, 32)
      putUint(struct, 224, r.kind)
      outer.set(keccak_256(struct), 34)
      return keccak_256(outer)
    },
  }
}

/** `0x` + lowercase hex of a digest. */
export function digestHex(digest: Uint8Array): `0x${string}` {
  return `0x${Buffer.from(digest.buffer, digest.byteOffset, digest.byteLength).toString('hex')}`
}
