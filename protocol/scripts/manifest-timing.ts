/**
 * Times signing and verifying site manifests of 1k, 10k and 100k entries, and the
 * per-path entry proof, against the previous format (entries inside the EIP-712 struct,
 * hashed by viem's `hashTypedData`) in the same run.
 *
 *   npx node protocol/scripts/manifest-timing.ts [--no-baseline] [--runs=3]
 *
 * Prints one JSON line per size; figures are milliseconds, best of `runs`.
 */
import { hashTypedData } from 'viem'
import {
  comparePaths,
  createManifestEntryProver,
  decodeManifestEntryProof,
  decodeSiteManifest,
  encodeManifestEntryProof,
  encodeSiteManifest,
  hashSiteManifest,
  type ManifestEntry,
  SHOAL_DOMAIN,
  type SiteManifest,
  signSiteManifest,
  validateSiteManifest,
  verifyManifestEntryProof,
  verifySiteManifest,
} from '../src/index.ts'
import { SAMPLE_TIME, TEST_ACCOUNTS } from './records-vectors.ts'

const SIZES = [1_000, 10_000, 100_000]
const CID = 'saejidaaqj2h77zknz2sys2yfh4ybugwtszbcgls6poytch2kf5dptg57gtqa'

/** A site of `count` files with paths like a built web app: /assets/<dir>/<name>-<hash>.js */
export function syntheticManifest(count: number): SiteManifest {
  const entries: ManifestEntry[] = []
  for (let i = 0; i < count; i++) {
    const hash = ((i * 2654435761) >>> 0).toString(16).padStart(8, '0')
    entries.push({
      path: `/assets/${(i % 97).toString(36)}/chunk-${i}-${hash}.js`,
      cid: CID,
      size: 1000 + i,
      contentType: 'text/javascript; charset=utf-8',
      cacheControl: 'public, max-age=31536000, immutable',
    })
  }
  entries.sort((a, b) => comparePaths(a.path, b.path))
  return {
    publisher: TEST_ACCOUNTS.publisher.address,
    site: 'app',
    sequence: 1,
    origin: '',
    timestamp: SAMPLE_TIME,
    entries,
  }
}

// The format before the entries tree: every entry hashed inside the EIP-712 struct.
const previousTypes = {
  SiteManifest: [
    { name: 'publisher', type: 'address' },
    { name: 'site', type: 'string' },
    { name: 'sequence', type: 'uint64' },
    { name: 'origin', type: 'string' },
    { name: 'timestamp', type: 'uint64' },
    { name: 'entries', type: 'ManifestEntry[]' },
  ],
  ManifestEntry: [
    { name: 'path', type: 'string' },
    { name: 'cid', type: 'string' },
    { name: 'size', type: 'uint64' },
    { name: 'contentType', type: 'string' },
    { name: 'cacheControl', type: 'string' },
  ],
} as const

function previousDigest(manifest: SiteManifest) {
  return hashTypedData({
    domain: SHOAL_DOMAIN,
    types: previousTypes,
    primaryType: 'SiteManifest',
    message: {
      ...manifest,
      sequence: BigInt(manifest.sequence),
      timestamp: BigInt(manifest.timestamp),
      entries: manifest.entries.map((e) => ({ ...e, size: BigInt(e.size) })),
    },
  })
}

async function best(fn: () => unknown, times: number): Promise<number> {
  let min = Number.POSITIVE_INFINITY
  for (let i = 0; i < times; i++) {
    const start = performance.now()
    await fn()
    min = Math.min(min, performance.now() - start)
  }
  return Math.round(min * 10) / 10
}

if (import.meta.main) {
  const args = process.argv.slice(2)
  const baseline = !args.includes('--no-baseline')
  const runs = Number(args.find((a) => a.startsWith('--runs='))?.slice(7) ?? 3)
  for (const count of SIZES) {
    const manifest = syntheticManifest(count)
    const signed = await signSiteManifest(TEST_ACCOUNTS.publisher, manifest)
    const text = encodeSiteManifest(signed)
    const prover = createManifestEntryProver(signed)
    const paths = manifest.entries.map((entry) => entry.path)
    const path = paths[Math.floor(count / 3)] as string
    const proofText = encodeManifestEntryProof(prover.prove(path))
    const at = { now: SAMPLE_TIME }
    const proveAll = await best(() => {
      for (const p of paths) prover.prove(p)
    }, 1)
    const row = {
      entries: count,
      manifestBytes: text.length,
      validateMs: await best(() => validateSiteManifest(manifest), runs),
      hashMs: await best(() => hashSiteManifest(manifest), runs),
      signMs: await best(() => signSiteManifest(TEST_ACCOUNTS.publisher, manifest), runs),
      verifyMs: await best(() => verifySiteManifest(signed, at), runs),
      decodeAndVerifyMs: await best(() => verifySiteManifest(decodeSiteManifest(text), at), runs),
      proverMs: await best(() => createManifestEntryProver(signed), runs),
      proveUs: Math.round((proveAll / count) * 1000 * 10) / 10,
      proofBytes: proofText.length,
      verifyProofMs: await best(
        () => verifyManifestEntryProof(decodeManifestEntryProof(proofText), { ...at, path }),
        runs,
      ),
      ...(baseline ? { previousFormatHashMs: await best(() => previousDigest(manifest), 1) } : {}),
    }
    console.log(JSON.stringify(row))
  }
}
