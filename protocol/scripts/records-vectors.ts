/**
 * Writes protocol/test-vectors/records.json: one signed message of every record kind,
 * with its EIP-712 type string, type hash, struct hash, digest, signature and canonical
 * encoding, so another implementation can check itself against this one; for the site
 * manifest also its entries tree (leaf inputs, leaves, root) and the entry proof of every
 * path.
 *
 *   npx node protocol/scripts/records-vectors.ts
 *
 * The keys are the well-known test keys 0x0101…01, 0x0202…02, 0x0303…03 and 0x0404…04:
 * public knowledge, never to be funded or used outside tests. Signatures are RFC 6979
 * deterministic, so regenerating gives the same file byte for byte.
 * `protocol/test/vectors-records.test.ts` re-derives every figure.
 */
import { writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type Hex, hashDomain, keccak256, sha256, toHex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import {
  type BandwidthReceipt,
  createManifestEntryProver,
  encodeManifestEntryProof,
  encodeRecord,
  type HealthProof,
  hashRecord,
  type NodeRecord,
  type PurgeRequest,
  RECORD_KIND_NAMES,
  type ReceiptBatch,
  type RecordKind,
  type RecordMessages,
  receiptsHash,
  recordTypes,
  SHOAL_DOMAIN,
  type Signed,
  type SiteManifest,
  signerOf,
  signRecord,
  siteManifestHeader,
  structHashRecord,
  type Ticket,
  ticketId,
} from '../src/index.ts'

const OUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'test-vectors', 'records.json')

/** The fixed test keys, by role. Well known: never use them outside tests. */
export const TEST_KEYS = {
  publisher: `0x${'01'.repeat(32)}`,
  node: `0x${'02'.repeat(32)}`,
  issuer: `0x${'03'.repeat(32)}`,
  client: `0x${'04'.repeat(32)}`,
} as const satisfies Record<string, Hex>

export type TestRole = keyof typeof TEST_KEYS

/** The local account of each test key. */
export const TEST_ACCOUNTS = {
  publisher: privateKeyToAccount(TEST_KEYS.publisher),
  node: privateKeyToAccount(TEST_KEYS.node),
  issuer: privateKeyToAccount(TEST_KEYS.issuer),
  client: privateKeyToAccount(TEST_KEYS.client),
}

const { publisher, node, issuer, client } = TEST_ACCOUNTS
/** 2026-01-01T00:00:00Z, the clock of every sample. */
export const SAMPLE_TIME = 1_767_225_600

const ticket: Ticket = {
  issuer: issuer.address,
  client: client.address,
  budget: 1_073_741_824,
  expiry: SAMPLE_TIME + 3600,
  nonce: `0x${'11'.repeat(32)}`,
}

/**
 * One message of each kind. The manifest's paths are sorted by code point: U+FF5A
 * comes before U+1F600, though UTF-16 order would put the emoji first. Its five entries
 * make a tree where the last leaf is promoted twice.
 */
const receipt = {
  node: node.address,
  client: client.address,
  session: `0x${'22'.repeat(32)}`,
  bytes: 5_242_880,
  epoch: 42,
  ticket: ticketId(ticket),
  kind: 0,
} satisfies BandwidthReceipt

export const SAMPLE_MESSAGES: RecordMessages = {
  SiteManifest: {
    publisher: publisher.address,
    site: 'blog',
    sequence: 7,
    origin: 'https://origin.example/assets/',
    timestamp: SAMPLE_TIME,
    entries: [
      {
        path: '/caf\u00e9/men\u00fc.html',
        cid: 'saejidaaqj2h77zknz2sys2yfh4ybugwtszbcgls6poytch2kf5dptg57gtqa',
        size: 262145,
        contentType: 'text/html; charset=utf-8',
        cacheControl: 'public, max-age=300',
      },
      {
        path: '/index.html',
        cid: 'saefoiihq7ryxwgvkot6ae53nncv2lav3s2fgtaio6kstucikihdj5velbu',
        size: 4196,
        contentType: 'text/html; charset=utf-8',
        cacheControl: '',
      },
      {
        path: '/robots.txt',
        cid: 'saejaa3ruboop7m32tcokkrhgxn4auldysaot7mzxhb3ikendayl27ia5',
        size: 0,
        contentType: 'text/plain',
        cacheControl: 'max-age=86400',
      },
      {
        path: '/\uff5a.txt',
        cid: 'saejacwl7zmysqljumvgcadjudd6kk4c4mshl6mtoy46y3xxrdba7q5wy',
        size: 1,
        contentType: 'text/plain',
        cacheControl: 'no-cache',
      },
      {
        path: '/\u{1f600}.png',
        cid: 'saejibaaq57wwjicvl56swi3lyqkkmuqs5uyvmp2thujfgmavhy6lmu4inyla',
        size: 262144,
        contentType: 'image/png',
        cacheControl: 'public, max-age=31536000, immutable',
      },
    ],
  } satisfies SiteManifest,
  NodeRecord: {
    node: node.address,
    peerId: '12D3KooWGzh9Tcjz9nPnaQmmJ6CxtWYDNDz9jy1KBqLb7P4cvyfC',
    multiaddrs: ['/ip4/203.0.113.7/tcp/4001', '/dns4/node.example/tcp/443/wss'],
    httpUrl: 'https://node.example:8443/',
    region: 'eu-west',
    capacity: 12_500_000,
    payout: publisher.address,
    timestamp: SAMPLE_TIME,
  } satisfies NodeRecord,
  Ticket: ticket,
  BandwidthReceipt: receipt,
  PurgeRequest: {
    publisher: publisher.address,
    site: 'blog',
    paths: ['/index.html'],
    prefixes: ['/img/'],
    timestamp: SAMPLE_TIME,
    nonce: `0x${'33'.repeat(32)}`,
  } satisfies PurgeRequest,
  HealthProof: {
    node: node.address,
    challenge: `0x${'44'.repeat(32)}`,
    timestamp: SAMPLE_TIME,
  } satisfies HealthProof,
  ReceiptBatch: {
    node: node.address,
    epoch: 42,
    count: 1,
    receiptsHash: receiptsHash([hashRecord('BandwidthReceipt', receipt)]),
    timestamp: SAMPLE_TIME,
  } satisfies ReceiptBatch,
}

/** The EIP-712 `encodeType` string: the primary type, then its dependencies sorted by name. */
export function typeString(kind: RecordKind): string {
  const types = recordTypes as unknown as Record<string, readonly { name: string; type: string }[]>
  const deps = new Set<string>()
  const visit = (name: string) => {
    const base = name.replace(/\[\]$/, '')
    if (types[base] === undefined || deps.has(base)) return
    deps.add(base)
    for (const field of types[base]) visit(field.type)
  }
  visit(kind)
  deps.delete(kind)
  return [kind, ...[...deps].sort()]
    .map((name) => `${name}(${(types[name] ?? []).map((f) => `${f.type} ${f.name}`).join(',')})`)
    .join('')
}

function roleOf(address: string): TestRole {
  const role = (Object.keys(TEST_ACCOUNTS) as TestRole[]).find((r) => TEST_ACCOUNTS[r].address === address)
  if (role === undefined) throw new Error(`no test key for ${address}`)
  return role
}

/** Builds the whole vectors file from the fixed keys and messages. */
export async function buildRecordVectors() {
  const vectors = []
  for (const kind of RECORD_KIND_NAMES) {
    const message = SAMPLE_MESSAGES[kind] as RecordMessages[RecordKind]
    const signer = roleOf(signerOf(kind, message as never))
    const signed = await signRecord(kind, TEST_ACCOUNTS[signer], message as never)
    const types = typeString(kind)
    vectors.push({
      kind,
      signer,
      signerAddress: TEST_ACCOUNTS[signer].address,
      typeString: types,
      typeHash: keccak256(toHex(types)),
      structHash: structHashRecord(kind, message as never),
      digest: hashRecord(kind, message as never),
      signature: signed.signature,
      encoded: encodeRecord(kind, signed as never),
      ...(kind === 'Ticket' ? { ticketId: ticketId(message as Ticket) } : {}),
      ...(kind === 'SiteManifest' ? manifestTree(message as SiteManifest) : {}),
    })
  }
  const manifest = vectors.find((v) => v.kind === 'SiteManifest')
  if (manifest === undefined) throw new Error('no SiteManifest vector')
  const entryProofs = entryProofVectors(SAMPLE_MESSAGES.SiteManifest, manifest.signature)
  return {
    description:
      'Shoal signed-record test vectors (EIP-712). Keys are well-known test keys: never use them outside tests. See docs/protocol.md ("Test vectors").',
    domain: SHOAL_DOMAIN,
    domainSeparator: hashDomain({
      domain: SHOAL_DOMAIN,
      types: {
        EIP712Domain: [
          { name: 'name', type: 'string' },
          { name: 'version', type: 'string' },
        ],
      },
    }),
    keys: (Object.keys(TEST_KEYS) as TestRole[]).map((role) => ({
      role,
      privateKey: TEST_KEYS[role],
      address: TEST_ACCOUNTS[role].address,
    })),
    vectors,
    entryProofs,
    invalid: invalidVectors(vectors, entryProofs),
  }
}

/** The EIP-712 struct of a manifest and its entries tree: leaf inputs, leaves and root. */
function manifestTree(manifest: SiteManifest) {
  const header = siteManifestHeader(manifest)
  return {
    header,
    entryLeaves: manifest.entries.map((entry) => {
      const { path, cid, size, contentType, cacheControl } = entry
      const leafInput = JSON.stringify({ path, cid, size, contentType, cacheControl })
      return { path: entry.path, leafInput, leaf: sha256(toHex(`\0${leafInput}`)) }
    }),
    emptyEntriesRoot: sha256('0x00'),
  }
}

/** The entry proof of every path of the sample manifest, and its canonical encoding. */
function entryProofVectors(manifest: SiteManifest, signature: Hex) {
  const prover = createManifestEntryProver({ message: manifest, signature } satisfies Signed<SiteManifest>)
  return manifest.entries.map(({ path }) => {
    const proof = prover.prove(path)
    return { path, index: proof.index, proof: proof.proof, encoded: encodeManifestEntryProof(proof) }
  })
}

const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n

/** The same signature with s replaced by n - s and v flipped: valid ECDSA, but not low-s. */
function highS(signature: string): string {
  const s = SECP256K1_N - BigInt(`0x${signature.slice(66, 130)}`)
  return `${signature.slice(0, 66)}${s.toString(16).padStart(64, '0')}${signature.endsWith('1b') ? '1c' : '1b'}`
}

/**
 * Encodings every implementation must refuse, each derived from a valid vector by one
 * change. `stage` says where: `decode` (format, `SHOAL_ERR_INVALID_FORMAT`) or
 * `verify` (signature, `SHOAL_ERR_INVALID_SIGNATURE`).
 */
function invalidVectors(
  vectors: readonly { kind: RecordKind; encoded: string; signature: string }[],
  entryProofs: readonly { path: string; encoded: string }[],
) {
  const of = (kind: RecordKind) => {
    const vector = vectors.find((v) => v.kind === kind)
    if (vector === undefined) throw new Error(`no ${kind} vector`)
    return vector
  }
  // A replacement that silently matched nothing would make a "refused" vector valid.
  const change = (text: string, from: string, to: string) => {
    if (!text.includes(from)) throw new Error(`vector text has no ${from}`)
    return text.replace(from, to)
  }
  const manifest = of('SiteManifest')
  const receipt = of('BandwidthReceipt')
  const purge = of('PurgeRequest')
  const ticket = of('Ticket')
  const client = TEST_ACCOUNTS.client.address
  const entryProof = entryProofs.find((p) => p.path === '/index.html')
  if (entryProof === undefined) throw new Error('no entry proof of /index.html')
  const proofKind = 'ManifestEntryProof'
  const invalidProof = 'SHOAL_ERR_INVALID_PROOF'
  const decode = 'decode'
  const format = 'SHOAL_ERR_INVALID_FORMAT'
  const signature = 'SHOAL_ERR_INVALID_SIGNATURE'
  return [
    {
      name: 'address not in EIP-55 checksum form',
      kind: receipt.kind,
      stage: decode,
      code: format,
      encoded: change(receipt.encoded, `"client":"${client}"`, `"client":"${client.toLowerCase()}"`),
    },
    {
      // Sorted in UTF-16 order (U+D83D < U+FF5A) but not in code point order.
      name: 'manifest entries sorted by UTF-16 units instead of code points',
      kind: manifest.kind,
      stage: decode,
      code: format,
      encoded: change(manifest.encoded, '"path":"/index.html"', '"path":"/\u{1f601}.html"'),
    },
    {
      name: 'unknown field',
      kind: ticket.kind,
      stage: decode,
      code: format,
      encoded: change(ticket.encoded, '"budget":', '"extra":1,"budget":'),
    },
    {
      name: 'traversal segment in a purge path',
      kind: purge.kind,
      stage: decode,
      code: format,
      encoded: change(purge.encoded, '"/index.html"', '"/a/../index.html"'),
    },
    {
      name: 'uppercase hex',
      kind: receipt.kind,
      stage: decode,
      code: format,
      encoded: change(receipt.encoded, '"session":"0x2222', '"session":"0x2A22'),
    },
    {
      name: 'high-s signature',
      kind: receipt.kind,
      stage: 'verify',
      code: signature,
      encoded: change(receipt.encoded, receipt.signature, highS(receipt.signature)),
    },
    {
      name: 'message changed after signing',
      kind: receipt.kind,
      stage: 'verify',
      code: signature,
      encoded: change(receipt.encoded, '"bytes":5242880', '"bytes":5242881'),
    },
    {
      name: 'manifest carrying an entryCount (it is derived, never read)',
      kind: manifest.kind,
      stage: decode,
      code: format,
      encoded: change(manifest.encoded, '"entries":', '"entryCount":5,"entries":'),
    },
    {
      name: 'entry proof with an index not below entryCount',
      kind: proofKind,
      stage: decode,
      code: format,
      encoded: change(entryProof.encoded, '"index":1,', '"index":5,'),
    },
    {
      name: 'entry proof moved to another index',
      kind: proofKind,
      stage: 'verify',
      code: invalidProof,
      encoded: change(entryProof.encoded, '"index":1,', '"index":0,'),
    },
    {
      name: 'entry proof whose entry changed',
      kind: proofKind,
      stage: 'verify',
      code: invalidProof,
      encoded: change(entryProof.encoded, '"size":4196', '"size":4197'),
    },
    {
      // Index 1 has the same path through a tree of 5 and of 6 leaves: the hashes still
      // reach the root, and only the signed entryCount exposes the change.
      name: 'entry proof with entryCount changed',
      kind: proofKind,
      stage: 'verify',
      code: signature,
      encoded: change(entryProof.encoded, '"entryCount":5,', '"entryCount":6,'),
    },
  ]
}

/** Text of the vectors file, as written. */
export async function recordVectorsText(): Promise<string> {
  return `${JSON.stringify(await buildRecordVectors(), null, 2)}\n`
}

if (import.meta.main) {
  await writeFile(OUT, await recordVectorsText())
  console.log(`wrote ${RECORD_KIND_NAMES.length} record vectors to ${OUT}`)
}
