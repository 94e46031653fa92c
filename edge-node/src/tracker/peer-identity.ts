/**
 * The node's mesh identity: an Ed25519 key kept in `<dataDir>/peer-key.json` (mode 0600)
 * and the libp2p peer id it gives. The peer id is what a node record names, so it must
 * be stable across restarts and the same one the mesh listens under.
 *
 * The peer id of an Ed25519 key is the base58btc text of the identity multihash of the
 * protobuf-encoded public key: `0x00 0x24 ‖ 0x08 0x01 0x12 0x20 ‖ publicKey` (libp2p's
 * peer-id spec), which starts with `12D3KooW`.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { base58 } from '@scure/base'
import { InvalidFormatError } from '@shoal/protocol'

export const PEER_KEY_FILE = 'peer-key.json'

/** DER prefix of an Ed25519 PKCS#8 private key; the 32-byte seed follows. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

export interface PeerIdentity {
  peerId: string
  /** The 32-byte Ed25519 seed (libp2p's raw private key is seed ‖ public key). */
  seed: Uint8Array
  publicKey: Uint8Array
}

function fromSeed(seed: Uint8Array): PeerIdentity {
  const privateKey: KeyObject = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  })
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' })
  const publicKey = new Uint8Array(spki.subarray(spki.length - 32))
  return { peerId: peerIdOf(publicKey), seed, publicKey }
}

/** The libp2p peer id (base58btc) of an Ed25519 public key. */
export function peerIdOf(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new InvalidFormatError('an Ed25519 public key is 32 bytes')
  return base58.encode(Uint8Array.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20, ...publicKey]))
}

/**
 * Loads the node's peer key, creating it on first start.
 *
 * @example
 * const { peerId } = await loadOrCreatePeerIdentity('/var/lib/shoal')
 */
export async function loadOrCreatePeerIdentity(dataDir: string): Promise<PeerIdentity> {
  const file = join(dataDir, PEER_KEY_FILE)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    const key = generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' })
    const seed = new Uint8Array(key.subarray(key.length - 32))
    const identity = fromSeed(seed)
    const body = `${JSON.stringify({ type: 'Ed25519', seed: Buffer.from(seed).toString('hex'), peerId: identity.peerId })}\n`
    try {
      await writeFile(file, body, { mode: 0o600, flag: 'wx' })
      return identity
    } catch (raced) {
      if ((raced as NodeJS.ErrnoException).code !== 'EEXIST') throw raced
      text = await readFile(file, 'utf8')
    }
  }
  let parsed: { type?: unknown; seed?: unknown }
  try {
    parsed = JSON.parse(text) as typeof parsed
  } catch {
    throw new InvalidFormatError(`${file} is not JSON`)
  }
  if (parsed.type !== 'Ed25519' || typeof parsed.seed !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.seed)) {
    throw new InvalidFormatError(`${file} must hold {"type":"Ed25519","seed":"<64 hex digits>"}`)
  }
  return fromSeed(new Uint8Array(Buffer.from(parsed.seed, 'hex')))
}
