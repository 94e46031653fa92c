import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import {
  createMerkleTree,
  createProof,
  decodeProof,
  encodeProof,
  formatCid,
  hashChunk,
  merkleRoot,
  proofLength,
  verifyLeaves,
  verifyMerkleProof,
  verifyProof,
} from '../src/index.ts'

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/** The spec, written out naively: leaves hashed with 0x00, pairs with 0x01, odd promoted. */
function referenceRoot(leaves: Uint8Array[]): Uint8Array {
  let level = leaves
  while (level.length > 1) {
    const next: Uint8Array[] = []
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? sha256(Uint8Array.of(1), level[i]!, level[i + 1]!) : level[i]!)
    }
    level = next
  }
  return level[0]!
}

const leafList = (count: number) =>
  Array.from({ length: count }, (_, i) => sha256(Uint8Array.of(0, i, i >> 8)))
const concat = (parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts))

function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (error) {
    return (error as { code?: string }).code ?? String(error)
  }
  throw new Error('expected a throw')
}

/** A CID whose root is the tree over `count` synthetic leaves, 1 KiB chunks. */
function treeOf(count: number) {
  const list = leafList(count)
  const leaves = concat(list)
  const cid = formatCid({ chunkSize: 1024, size: count * 1024, root: referenceRoot(list) })
  return { list, leaves, cid }
}

describe('hashChunk', () => {
  it('is SHA-256 of 0x00 and the bytes', async () => {
    const bytes = Uint8Array.from({ length: 3000 }, (_, i) => i)
    expect(await hashChunk(bytes)).toEqual(sha256(Uint8Array.of(0), bytes))
    expect(Buffer.from(await hashChunk(new Uint8Array())).toString('hex')).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    )
  })

  it('refuses what is not bytes', async () => {
    await expect(hashChunk('abc' as never)).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_ARGUMENT' })
  })
})

describe('merkleRoot', () => {
  it('matches the naive tree for 1 to 33 leaves', () => {
    for (let count = 1; count <= 33; count++) {
      const list = leafList(count)
      expect(merkleRoot(concat(list))).toEqual(referenceRoot(list))
    }
  })

  it('returns a copy of a single leaf, never the caller buffer', () => {
    const leaves = leafList(1)[0]!
    const root = merkleRoot(leaves)
    expect(root).toEqual(leaves)
    root[0] = root[0]! ^ 1
    expect(root).not.toEqual(leaves)
  })

  it('promotes an odd node unchanged: three leaves hash as H(H(a, b), c)', () => {
    const [a, b, c] = leafList(3) as [Uint8Array, Uint8Array, Uint8Array]
    const one = Uint8Array.of(1)
    expect(merkleRoot(concat([a, b, c]))).toEqual(sha256(one, sha256(one, a, b), c))
  })

  it('refuses leaf lists that are empty or not whole hashes', () => {
    for (const leaves of [
      new Uint8Array(),
      new Uint8Array(31),
      new Uint8Array(33),
      new Uint8Array(65),
      'x',
    ]) {
      expect(codeOf(() => merkleRoot(leaves as Uint8Array))).toBe('SHOAL_ERR_INVALID_LEAVES')
    }
  })
})

describe('verifyLeaves', () => {
  const { leaves, cid } = treeOf(5)

  it('returns leaves that rebuild the root', async () => {
    expect(await verifyLeaves(cid, leaves)).toBe(leaves)
  })

  it('refuses truncated, oversized, altered or misplaced leaves', async () => {
    const altered = leaves.slice()
    altered[40] = altered[40]! ^ 0x10
    const swapped = concat([leaves.subarray(32, 64), leaves.subarray(0, 32), leaves.subarray(64)])
    const cases = [
      leaves.subarray(0, 4 * 32),
      leaves.subarray(0, leaves.length - 1),
      concat([leaves, new Uint8Array(32)]),
      concat([leaves, new Uint8Array(1)]),
      new Uint8Array(),
      altered,
      swapped,
    ]
    for (const bad of cases) {
      await expect(verifyLeaves(cid, bad)).rejects.toMatchObject({ code: 'SHOAL_ERR_INVALID_LEAVES' })
    }
    await expect(verifyLeaves(cid, [1, 2] as never)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_LEAVES',
    })
  })

  it('names the expected length', async () => {
    await expect(verifyLeaves(cid, leaves.subarray(32))).rejects.toThrow(
      /5 chunks, so 160 bytes of leaves, got 128/,
    )
  })
})

describe('createProof / verifyProof', () => {
  it('proves every leaf of trees of 1 to 20 leaves, with the derived length', async () => {
    for (let count = 1; count <= 20; count++) {
      const { list, leaves, cid } = treeOf(count)
      for (let index = 0; index < count; index++) {
        const proof = createProof(leaves, index)
        expect(proof).toHaveLength(proofLength(index, count))
        await verifyProof(cid, index, list[index]!, proof)
      }
    }
  })

  it('skips levels where the node is promoted', () => {
    expect(createProof(leafList(1).at(0)!, 0)).toEqual([])
    // 5 leaves: leaf 4 is promoted twice, then meets the root's left child.
    const list = leafList(5)
    const proof = createProof(concat(list), 4)
    const one = Uint8Array.of(1)
    expect(proof).toEqual([sha256(one, sha256(one, list[0]!, list[1]!), sha256(one, list[2]!, list[3]!))])
    expect(proofLength(39, 40)).toBe(4)
    expect(proofLength(7, 40)).toBe(6)
  })

  it('refuses a proof of the wrong length', async () => {
    const { list, leaves, cid } = treeOf(6)
    const proof = createProof(leaves, 2)
    for (const bad of [proof.slice(1), [...proof, proof[0]!], []]) {
      await expect(verifyProof(cid, 2, list[2]!, bad)).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_PROOF',
      })
    }
    await expect(verifyProof(cid, 2, list[2]!, proof.slice(1))).rejects.toThrow(/must have 3 hashes, got 2/)
  })

  it('refuses a proof that does not reach the root', async () => {
    const { list, leaves, cid } = treeOf(6)
    const proof = createProof(leaves, 2)
    const reversed = [...proof].reverse()
    const flipped = proof.map((h, k) => (k === 1 ? h.map((b, i) => (i === 0 ? b ^ 1 : b)) : h))
    const cases: [number, Uint8Array, Uint8Array[]][] = [
      [2, list[2]!, reversed],
      [2, list[2]!, flipped],
      [2, list[3]!, proof],
      [3, list[2]!, proof],
    ]
    for (const [index, leaf, p] of cases) {
      await expect(verifyProof(cid, index, leaf, p)).rejects.toMatchObject({
        code: 'SHOAL_ERR_INVALID_PROOF',
      })
    }
    await expect(verifyProof(cid, 2, list[2]!, reversed)).rejects.toThrow(/does not lead to the root/)
  })

  it('never writes to or aliases caller Buffers (Buffer#slice is a view)', async () => {
    const { list, leaves, cid } = treeOf(6)
    const buffer = Buffer.from(leaves)
    const leaf = Buffer.from(list[2]!)
    const proof = createProof(buffer, 2)
    await verifyProof(cid, 2, leaf, proof)
    expect(new Uint8Array(leaf)).toEqual(list[2])
    proof[0]!.fill(0)
    expect(new Uint8Array(buffer)).toEqual(leaves)
    const single = Buffer.from(list[0]!)
    merkleRoot(single).fill(0)
    expect(new Uint8Array(single)).toEqual(list[0])
    const root = Buffer.from(cid.root)
    const copy = formatCid({ chunkSize: 1024, size: 1, root })
    root.fill(0)
    expect(copy.root).toEqual(cid.root)
    expect(Object.getPrototypeOf(copy.root)).toBe(Uint8Array.prototype)
  })

  it('refuses malformed arguments with typed errors', async () => {
    const { list, leaves, cid } = treeOf(6)
    const proof = createProof(leaves, 2)
    await expect(verifyProof(cid, 6, list[2]!, proof)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
    await expect(verifyProof(cid, -1, list[2]!, proof)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
    await expect(verifyProof(cid, 2, list[2]!.subarray(1), proof)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_ARGUMENT',
    })
    const short = [proof[0]!, proof[1]!.subarray(1), proof[2]!]
    await expect(verifyProof(cid, 2, list[2]!, short)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_PROOF',
    })
    await expect(verifyProof(cid, 2, list[2]!, 'abc' as never)).rejects.toMatchObject({
      code: 'SHOAL_ERR_INVALID_PROOF',
    })
    expect(codeOf(() => createProof(leaves, 6))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
    expect(codeOf(() => createProof(leaves, 0.5))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
    expect(codeOf(() => createProof(leaves.subarray(1), 0))).toBe('SHOAL_ERR_INVALID_LEAVES')
  })
})

describe('verifyMerkleProof (the tree without a CID)', () => {
  it('proves every leaf of trees of 1 to 20 leaves against the naive root', () => {
    for (let count = 1; count <= 20; count++) {
      const list = leafList(count)
      const root = referenceRoot(list)
      for (let index = 0; index < count; index++) {
        const proof = createProof(concat(list), index)
        verifyMerkleProof({ root, count, index, leaf: list[index]!, proof })
      }
    }
  })

  it('refuses the proof of one position at any other position', () => {
    const list = leafList(7)
    const root = referenceRoot(list)
    for (let index = 0; index < 7; index++) {
      const proof = createProof(concat(list), index)
      for (let other = 0; other < 7; other++) {
        if (other === index) continue
        expect(
          codeOf(() => verifyMerkleProof({ root, count: 7, index: other, leaf: list[index]!, proof })),
        ).toBe('SHOAL_ERR_INVALID_PROOF')
      }
    }
  })

  it('takes the shape from the count: a count with the same sibling pattern on the path folds alike', () => {
    // So a verifier must take the count from where it takes the root (a CID, a signed header).
    const list = leafList(7)
    const root = referenceRoot(list)
    const proof = createProof(concat(list), 0)
    // Leaf 0 has a sibling at every level for 5, 6, 7 and 8 leaves: same three hashes.
    for (const count of [5, 6, 8]) verifyMerkleProof({ root, count, index: 0, leaf: list[0]!, proof })
    for (const count of [2, 3, 4, 9, 16]) {
      expect(codeOf(() => verifyMerkleProof({ root, count, index: 0, leaf: list[0]!, proof }))).toBe(
        'SHOAL_ERR_INVALID_PROOF',
      )
    }
  })

  it('names the expected length and refuses a root it does not reach', () => {
    const list = leafList(6)
    const root = referenceRoot(list)
    const proof = createProof(concat(list), 2)
    expect(() =>
      verifyMerkleProof({ root, count: 6, index: 2, leaf: list[2]!, proof: proof.slice(1) }),
    ).toThrow(/the proof of leaf 2 of 6 must have 3 hashes, got 2/)
    const other = root.map((b, i) => (i === 31 ? b ^ 1 : b))
    expect(() => verifyMerkleProof({ root: other, count: 6, index: 2, leaf: list[2]!, proof })).toThrow(
      /does not lead to the root/,
    )
  })

  it('refuses malformed claims with typed errors', () => {
    const list = leafList(3)
    const root = referenceRoot(list)
    const proof = createProof(concat(list), 0)
    const good = { root, count: 3, index: 0, leaf: list[0]!, proof }
    for (const bad of [
      { ...good, root: root.subarray(1) },
      { ...good, count: 0 },
      { ...good, count: 1.5 },
      { ...good, index: 3 },
      { ...good, index: -1 },
      { ...good, leaf: 'x' },
    ]) {
      expect(codeOf(() => verifyMerkleProof(bad as never))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
    }
    expect(codeOf(() => verifyMerkleProof(null as never))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
    expect(codeOf(() => verifyMerkleProof({ ...good, proof: 'x' as never }))).toBe('SHOAL_ERR_INVALID_PROOF')
  })
})

describe('createMerkleTree', () => {
  it('has the same root and proofs as merkleRoot and createProof, for 1 to 33 leaves', () => {
    for (let count = 1; count <= 33; count++) {
      const leaves = concat(leafList(count))
      const tree = createMerkleTree(leaves)
      expect(tree.count).toBe(count)
      expect(tree.root).toEqual(merkleRoot(leaves))
      for (let index = 0; index < count; index++)
        expect(tree.proof(index)).toEqual(createProof(leaves, index))
    }
  })

  it('copies the leaves and hands out copies', () => {
    const leaves = concat(leafList(5))
    const tree = createMerkleTree(leaves)
    const root = tree.root
    const proof = tree.proof(4)
    leaves.fill(0)
    root.fill(0)
    proof[0]!.fill(0)
    expect(tree.root).toEqual(referenceRoot(leafList(5)))
    expect(tree.proof(4)).toEqual(createProof(concat(leafList(5)), 4))
    expect(createMerkleTree(leafList(1)[0]!).proof(0)).toEqual([])
  })

  it('refuses bad leaves and indexes', () => {
    expect(codeOf(() => createMerkleTree(new Uint8Array()))).toBe('SHOAL_ERR_INVALID_LEAVES')
    const tree = createMerkleTree(concat(leafList(4)))
    expect(codeOf(() => tree.proof(4))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
    expect(codeOf(() => tree.proof(Number.NaN))).toBe('SHOAL_ERR_INVALID_ARGUMENT')
  })
})

describe('encodeProof / decodeProof', () => {
  it('round-trips as concatenated hashes', () => {
    const proof = createProof(concat(leafList(9)), 3)
    const encoded = encodeProof(proof)
    expect(encoded).toEqual(concat(proof))
    expect(decodeProof(encoded)).toEqual(proof)
    expect(decodeProof(new Uint8Array())).toEqual([])
    expect(encodeProof([])).toEqual(new Uint8Array())
  })

  it('refuses bytes that are not whole hashes and hashes that are not 32 bytes', () => {
    expect(codeOf(() => decodeProof(new Uint8Array(33)))).toBe('SHOAL_ERR_INVALID_PROOF')
    expect(codeOf(() => decodeProof('00' as never))).toBe('SHOAL_ERR_INVALID_PROOF')
    expect(codeOf(() => encodeProof([new Uint8Array(31)]))).toBe('SHOAL_ERR_INVALID_PROOF')
    expect(codeOf(() => encodeProof('x' as never))).toBe('SHOAL_ERR_INVALID_PROOF')
  })
})
