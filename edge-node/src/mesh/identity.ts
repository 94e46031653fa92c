/**
 * The node's libp2p identity: an Ed25519 key kept beside the node's Ethereum key, in
 * `<dataDir>/peer-key.json` (mode 0600) as `{"type":"Ed25519","seed":"<64 hex>",
 * "peerId":"12D3KooW…"}` — the file and format the tracker announcer reads, so the
 * peer id a node registers is the one its mesh listens under. It is not derived from
 * the Ethereum key (the keystore never exposes it); the node record, signed by the
 * Ethereum key, binds the two by naming the peer id.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { InvalidFormatError } from '@shoal/protocol'

export const MESH_KEY_FILE = 'peer-key.json'

/**
 * Reads `<dataDir>/peer-key.json`, or creates it (0600) on first start.
 *
 * @example
 * const privateKey = await loadOrCreateMeshKey('/var/lib/shoal')
 */
export async function loadOrCreateMeshKey(dataDir: string): Promise<PrivateKey> {
  const file = join(dataDir, MESH_KEY_FILE)
  let text: string | undefined
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (text === undefined) {
    const key = await generateKeyPair('Ed25519')
    // libp2p's raw Ed25519 private key is seed ‖ public key
    const seed = Buffer.from(key.raw.subarray(0, 32)).toString('hex')
    const body = `${JSON.stringify({ type: 'Ed25519', seed, peerId: peerIdFromPrivateKey(key).toString() })}\n`
    try {
      // wx: never overwrite a key another process wrote in between
      await writeFile(file, body, { mode: 0o600, flag: 'wx' })
      return key
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      text = await readFile(file, 'utf8')
    }
  }
  let parsed: { type?: unknown; seed?: unknown }
  try {
    parsed = JSON.parse(text) as typeof parsed
  } catch (cause) {
    throw new InvalidFormatError(`${file} is not JSON`, { cause })
  }
  if (parsed.type !== 'Ed25519' || typeof parsed.seed !== 'string' || !/^[0-9a-f]{64}$/.test(parsed.seed)) {
    throw new InvalidFormatError(`${file} must hold {"type":"Ed25519","seed":"<64 hex digits>"}`)
  }
  return generateKeyPairFromSeed('Ed25519', Buffer.from(parsed.seed, 'hex'))
}
