/**
 * The node's libp2p identity: an Ed25519 key kept beside the node's Ethereum key, in
 * `<dataDir>/mesh.key` (libp2p's protobuf key encoding, mode 0600). It is not derived
 * from the Ethereum key (the keystore never exposes it); the node record, signed by the
 * Ethereum key, binds the two by naming the peer id.
 */
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { InvalidFormatError } from '@shoal/protocol'

export const MESH_KEY_FILE = 'mesh.key'

/**
 * Reads `<dataDir>/mesh.key`, or creates it (0600) on first start.
 *
 * @example
 * const privateKey = await loadOrCreateMeshKey('/var/lib/shoal')
 */
export async function loadOrCreateMeshKey(dataDir: string): Promise<PrivateKey> {
  const file = join(dataDir, MESH_KEY_FILE)
  let bytes: Buffer | undefined
  try {
    bytes = await readFile(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (bytes !== undefined) {
    try {
      return privateKeyFromProtobuf(bytes)
    } catch (cause) {
      throw new InvalidFormatError(`${file} is not a libp2p private key`, { cause })
    }
  }
  const key = await generateKeyPair('Ed25519')
  // wx: never overwrite a key another process wrote in between
  await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx' }).catch(async (err) => {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return
    throw err
  })
  await chmod(file, 0o600)
  return privateKeyFromProtobuf(await readFile(file))
}
