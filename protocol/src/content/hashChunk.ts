import { createLeafHasher } from '#sha256'
import { InvalidArgumentError } from '../errors.ts'
import { describe } from './bytes.ts'

/**
 * The leaf hash of one chunk: SHA-256(0x00 ‖ bytes).
 *
 * @example
 * const leaf = await hashChunk(chunkBytes)
 */
export async function hashChunk(bytes: Uint8Array): Promise<Uint8Array> {
  if (!(bytes instanceof Uint8Array))
    throw new InvalidArgumentError(`a chunk must be bytes, got ${describe(bytes)}`)
  const hasher = createLeafHasher(bytes.length)
  hasher.update(bytes)
  return hasher.digest()
}
