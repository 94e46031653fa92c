/**
 * One generic codec for every signed record kind. A kind is a row of
 * `RECORD_KINDS` (EIP-712 types, strict schema, signer field, freshness rule);
 * the per-kind `signX` / `verifyX` / `encodeX` / `decodeX` functions are thin
 * names over the functions here.
 */

import type { Address, Hex } from 'viem'
import {
  getAddress,
  hashStruct,
  hashTypedData,
  isAddress,
  type LocalAccount,
  type TypedDataDefinition,
} from 'viem'
import { z } from 'zod'
import {
  ExpiredError,
  InvalidArgumentError,
  InvalidFormatError,
  InvalidSignatureError,
  StaleError,
} from '../errors.ts'
import {
  bandwidthReceiptTypes,
  healthProofTypes,
  nodeRecordTypes,
  purgeRequestTypes,
  receiptBatchTypes,
  SHOAL_DOMAIN,
  siteManifestTypes,
  ticketTypes,
} from './domain.ts'
import { RECORD_DEFAULTS } from './limits.ts'
import { headerOf, siteManifestLayout } from './manifestEntries.ts'
import {
  type BandwidthReceipt,
  bandwidthReceiptSchema,
  type HealthProof,
  healthProofSchema,
  type NodeRecord,
  nodeRecordSchema,
  type PurgeRequest,
  purgeRequestSchema,
  type ReceiptBatch,
  receiptBatchSchema,
  type Signed,
  type SiteManifest,
  siteManifestSchema,
  type Ticket,
  ticketSchema,
} from './schemas.ts'
import { normalizeSignature, recoverSigner, signatureField } from './signature.ts'

/** The message type of each record kind, by EIP-712 primary type. */
export interface RecordMessages {
  SiteManifest: SiteManifest
  NodeRecord: NodeRecord
  Ticket: Ticket
  BandwidthReceipt: BandwidthReceipt
  PurgeRequest: PurgeRequest
  HealthProof: HealthProof
  ReceiptBatch: ReceiptBatch
}

/** The EIP-712 types object of each record kind. */
export interface RecordTypesByKind {
  SiteManifest: typeof siteManifestTypes
  NodeRecord: typeof nodeRecordTypes
  Ticket: typeof ticketTypes
  BandwidthReceipt: typeof bandwidthReceiptTypes
  PurgeRequest: typeof purgeRequestTypes
  HealthProof: typeof healthProofTypes
  ReceiptBatch: typeof receiptBatchTypes
}

/** A record kind, named by its EIP-712 primary type. */
export type RecordKind = keyof RecordMessages

/** The EIP-712 typed data (domain, types, primary type, message) of each record kind, as viem types it. */
export interface RecordTypedData {
  SiteManifest: TypedDataDefinition<typeof siteManifestTypes, 'SiteManifest'>
  NodeRecord: TypedDataDefinition<typeof nodeRecordTypes, 'NodeRecord'>
  Ticket: TypedDataDefinition<typeof ticketTypes, 'Ticket'>
  BandwidthReceipt: TypedDataDefinition<typeof bandwidthReceiptTypes, 'BandwidthReceipt'>
  PurgeRequest: TypedDataDefinition<typeof purgeRequestTypes, 'PurgeRequest'>
  HealthProof: TypedDataDefinition<typeof healthProofTypes, 'HealthProof'>
  ReceiptBatch: TypedDataDefinition<typeof receiptBatchTypes, 'ReceiptBatch'>
}

/** Options every `verify*` function takes. */
export interface VerifyOptions {
  /** The verifier's clock, unix seconds. Default: `Date.now() / 1000`. */
  now?: number
  /** Clock disagreement tolerated on timestamps and expiries. Default 300. */
  maxSkewSeconds?: number
}

/** Options of records that carry a `timestamp`. */
export interface TimestampVerifyOptions extends VerifyOptions {
  /** Oldest acceptable record, in seconds before `now` (plus skew). `Infinity` for no limit. */
  maxAgeSeconds?: number
}

/** Options of `verifySiteManifest`. */
export interface VerifySiteManifestOptions extends TimestampVerifyOptions {
  /** Sequence of the manifest already held for this site; anything not above it is `StaleError`. */
  knownSequence?: number
}

/** Options of `verifyHealthProof`: what the tracker sent, which the proof must echo. */
export interface VerifyHealthProofOptions extends TimestampVerifyOptions {
  /** The challenge the tracker sent (0x + 64 hex, any case): another one is `InvalidSignatureError`. */
  expectedChallenge?: Hex
  /** The node the tracker probed (any case): a proof by another key is `InvalidSignatureError`. */
  expectedNode?: Address
}

/** The options type of each kind's `verify*` function. */
export interface RecordVerifyOptions {
  SiteManifest: VerifySiteManifestOptions
  NodeRecord: TimestampVerifyOptions
  Ticket: VerifyOptions
  BandwidthReceipt: VerifyOptions
  PurgeRequest: TimestampVerifyOptions
  HealthProof: VerifyHealthProofOptions
  ReceiptBatch: TimestampVerifyOptions
}

/** What signs records: a viem local account, or anything with the same two members. */
export type RecordSigner = Pick<LocalAccount, 'address' | 'signTypedData'>

type StructTypes = Readonly<Record<string, readonly { readonly name: string; readonly type: string }[]>>

/** The fields of a message that hold an address: candidates for the signer field. */
type AddressFields<T> = { [F in keyof T]: T[F] extends Address ? F : never }[keyof T]

/** The verifier's options, checked and with defaults applied. */
export interface Clock {
  now: number
  skew: number
  maxAge: number | undefined
  knownSequence: number | undefined
}

interface KindSpec<K extends RecordKind> {
  /** The EIP-712 types: what is signed. */
  types: RecordTypesByKind[K]
  /** The canonical JSON layout (field order), when the document is not the EIP-712 struct itself. */
  layout?: StructTypes
  /** The EIP-712 struct of a valid message (JSON numbers), when it is derived rather than the message itself. */
  toStruct?: (message: RecordMessages[K]) => object
  schema: z.ZodType<RecordMessages[K]>
  /** The field naming the key that must have signed the record. */
  signer: AddressFields<RecordMessages[K]>
  /** For kinds with a `timestamp`: the oldest it may be by default (`Infinity`: no limit). */
  maxAgeSeconds?: number
  /** Further freshness and ordering rules, run before the (costly) signature recovery. */
  check?: (message: RecordMessages[K], clock: Clock) => void
  /**
   * Verify options (by name) that give the value a field must have, e.g. the challenge
   * the verifier sent; a record with another value is `InvalidSignatureError`.
   */
  expect?: Readonly<Record<string, keyof RecordMessages[K] & string>>
}

/** Every record kind: its EIP-712 types, strict schema, signer field and freshness rule. */
const RECORD_KINDS: { readonly [K in RecordKind]: KindSpec<K> } = {
  SiteManifest: {
    types: siteManifestTypes,
    layout: siteManifestLayout,
    // entryCount and entriesRoot are computed from the entries, never taken from input.
    toStruct: (message) => headerOf(message),
    schema: siteManifestSchema,
    signer: 'publisher',
    maxAgeSeconds: RECORD_DEFAULTS.siteManifestMaxAgeSeconds,
    check(message, { knownSequence }) {
      if (knownSequence !== undefined && message.sequence <= knownSequence) {
        throw new StaleError(
          `SiteManifest sequence ${message.sequence} is not above the known ${knownSequence}`,
        )
      }
    },
  },
  NodeRecord: {
    types: nodeRecordTypes,
    schema: nodeRecordSchema,
    signer: 'node',
    maxAgeSeconds: RECORD_DEFAULTS.nodeRecordMaxAgeSeconds,
  },
  Ticket: {
    types: ticketTypes,
    schema: ticketSchema,
    signer: 'issuer',
    check(message, { now, skew }) {
      if (now > message.expiry + skew) throw new ExpiredError(`Ticket expired ${now - message.expiry} s ago`)
    },
  },
  BandwidthReceipt: {
    types: bandwidthReceiptTypes,
    schema: bandwidthReceiptSchema,
    signer: 'client',
  },
  PurgeRequest: {
    types: purgeRequestTypes,
    schema: purgeRequestSchema,
    signer: 'publisher',
    maxAgeSeconds: RECORD_DEFAULTS.purgeRequestMaxAgeSeconds,
  },
  HealthProof: {
    types: healthProofTypes,
    schema: healthProofSchema,
    signer: 'node',
    maxAgeSeconds: RECORD_DEFAULTS.healthProofMaxAgeSeconds,
    expect: { expectedNode: 'node', expectedChallenge: 'challenge' },
  },
  ReceiptBatch: {
    types: receiptBatchTypes,
    schema: receiptBatchSchema,
    signer: 'node',
    maxAgeSeconds: RECORD_DEFAULTS.receiptBatchMaxAgeSeconds,
  },
}

/** Refuses a timestamp from the future (beyond skew) or older than `maxAge` (plus skew). Internal. */
export function checkTimestamp(kind: string, timestamp: number, maxAge: number, { now, skew }: Clock): void {
  if (timestamp > now + skew) {
    throw new ExpiredError(`${kind} timestamp is ${timestamp - now} s in the future (tolerance ${skew} s)`)
  }
  if (now - timestamp > maxAge + skew) {
    throw new ExpiredError(`${kind} is ${now - timestamp} s old (max age ${maxAge} s)`)
  }
}

/** Checks a verifier's options and applies the defaults. Internal. */
export function readClock(options: unknown): Clock {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidArgumentError('options must be an object')
  }
  const given = (options ?? {}) as VerifySiteManifestOptions
  return {
    now: optionNumber('now', given.now, false) ?? Date.now() / 1000,
    skew: optionNumber('maxSkewSeconds', given.maxSkewSeconds, false) ?? RECORD_DEFAULTS.maxSkewSeconds,
    maxAge: optionNumber('maxAgeSeconds', given.maxAgeSeconds, true),
    knownSequence: optionNumber('knownSequence', given.knownSequence, false),
  }
}

/** The record kinds, in the order the docs list them. */
export const RECORD_KIND_NAMES = Object.freeze(Object.keys(RECORD_KINDS) as RecordKind[])

function spec<K extends RecordKind>(kind: K): KindSpec<K> {
  if (!Object.hasOwn(RECORD_KINDS, kind))
    throw new InvalidArgumentError(`unknown record kind ${String(kind)}`)
  return RECORD_KINDS[kind] as KindSpec<K>
}

const HEX32_RE = /^0x[0-9a-fA-F]{64}$/

/**
 * The expectations among `options` (see `KindSpec.expect`), checked and in the canonical
 * form of their field: a checksummed address, lowercase bytes32.
 */
function readExpectations(kind: RecordKind, options: unknown): [field: string, value: string][] {
  const given = (options ?? {}) as Record<string, unknown>
  const fields = (spec(kind).types as StructTypes)[kind] ?? []
  const out: [string, string][] = []
  for (const [option, field] of Object.entries(spec(kind).expect ?? {})) {
    const value = given[option]
    if (value === undefined) continue
    const type = fields.find((f) => f.name === field)?.type
    if (type === 'address' && typeof value === 'string' && isAddress(value, { strict: false })) {
      out.push([field, getAddress(value)])
    } else if (type === 'bytes32' && typeof value === 'string' && HEX32_RE.test(value)) {
      out.push([field, value.toLowerCase()])
    } else {
      throw new InvalidArgumentError(`${option} must be ${type === 'address' ? 'an address' : '0x + 64 hex'}`)
    }
  }
  return out
}

function optionNumber(name: string, value: unknown, allowInfinity: boolean): number | undefined {
  if (value === undefined) return undefined
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < 0 ||
    (!allowInfinity && !Number.isFinite(value))
  ) {
    throw new InvalidArgumentError(
      `${name} must be a non-negative number${allowInfinity ? ' or Infinity' : ''}`,
    )
  }
  return value
}

// Messages for zod's generic issues; the field rules carry their own.
const issueMessages: z.core.$ZodErrorMap = (issue) => {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return 'is missing'
    return issue.expected === 'int' ? 'must be an integer' : `must be of type ${issue.expected}`
  }
  if (issue.code === 'unrecognized_keys') {
    return `has unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((key) => JSON.stringify(key)).join(', ')}`
  }
  if (issue.code === 'too_big') {
    if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`
    if (issue.origin === 'array') return `must have at most ${issue.maximum} items`
    return 'must be a safe integer (at most 2^53 - 1)'
  }
  if (issue.code === 'too_small') return 'must not be negative'
  return undefined
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const key of path)
    out += typeof key === 'number' ? `[${key}]` : `${out === '' ? '' : '.'}${String(key)}`
  return out === '' ? 'record' : out
}

/**
 * Validates `value` with `schema`; else `InvalidFormatError` naming `name` and the first
 * bad fields. Internal: the one strict parser of every record and of entry proofs.
 */
export function parseStrict<T>(name: string, schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value, { error: issueMessages })
  if (result.success) return result.data
  const issues = result.error.issues.slice(0, 3).map((issue) => `${formatPath(issue.path)} ${issue.message}`)
  throw new InvalidFormatError(`invalid ${name}: ${issues.join('; ')}`, { cause: result.error })
}

const signedSchemas = new Map<RecordKind, z.ZodType<Signed<unknown>>>()

function signedSchema<K extends RecordKind>(kind: K): z.ZodType<Signed<RecordMessages[K]>> {
  let schema = signedSchemas.get(kind)
  if (schema === undefined) {
    schema = z.strictObject({ message: spec(kind).schema, signature: signatureField })
    signedSchemas.set(kind, schema)
  }
  return schema as z.ZodType<Signed<RecordMessages[K]>>
}

type Leaf = (type: string, value: unknown) => unknown

/** Rebuilds `value` field by field in EIP-712 order, passing every primitive through `leaf`. */
function mapStruct(types: StructTypes, type: string, value: unknown, leaf: Leaf): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const field of types[type] ?? []) {
    out[field.name] = mapField(types, field.type, (value as Record<string, unknown>)[field.name], leaf)
  }
  return out
}

function mapField(types: StructTypes, type: string, value: unknown, leaf: Leaf): unknown {
  if (type.endsWith('[]'))
    return (value as unknown[]).map((item) => mapField(types, type.slice(0, -2), item, leaf))
  if (types[type] !== undefined) return mapStruct(types, type, value, leaf)
  return leaf(type, value)
}

// uint64 values travel as JS numbers (always safe integers here) and are signed as bigints.
const toTypedLeaf: Leaf = (type, value) => (type.startsWith('uint') ? BigInt(value as number) : value)
const identityLeaf: Leaf = (_type, value) => value

/** The EIP-712 typed data of a struct message already in EIP-712 shape (numbers as JS numbers). */
function structDefinition(kind: RecordKind, struct: unknown): TypedDataDefinition {
  return {
    domain: SHOAL_DOMAIN,
    types: spec(kind).types,
    primaryType: kind,
    message: mapStruct(spec(kind).types, kind, struct, toTypedLeaf),
  } as unknown as TypedDataDefinition
}

/** The typed data of a validated message: its struct derived (a manifest's header), numbers as bigints. */
function typedDefinition<K extends RecordKind>(kind: K, message: RecordMessages[K]): TypedDataDefinition {
  const { toStruct } = spec(kind)
  return structDefinition(kind, toStruct === undefined ? message : toStruct(message))
}

/**
 * The EIP-712 digest of a validated struct message of `kind`: for a site manifest, its
 * header, which an entry proof carries without the entries. Internal.
 */
export function structDigest(kind: RecordKind, struct: object): Hex {
  return hashTypedData(structDefinition(kind, struct))
}

function signerOfValid<K extends RecordKind>(kind: K, message: RecordMessages[K]): Address {
  return message[spec(kind).signer] as Address
}

/**
 * Checks `message` against the rules of `kind` and returns it typed; refuses
 * unknown or missing fields, wrong types and non-canonical values.
 *
 * @example
 * const receipt = validateRecord('BandwidthReceipt', JSON.parse(body))
 */
export function validateRecord<K extends RecordKind>(kind: K, message: unknown): RecordMessages[K] {
  return parseStrict(kind, spec(kind).schema, message)
}

/**
 * The address that must have signed a record of `kind`: its publisher, node,
 * issuer or client field.
 *
 * @example
 * signerOf('BandwidthReceipt', receipt) // receipt.client
 */
export function signerOf<K extends RecordKind>(kind: K, message: RecordMessages[K]): Address {
  return signerOfValid(kind, validateRecord(kind, message))
}

/**
 * The full EIP-712 typed data of a record, ready for any viem signer (a wallet
 * client in a browser, a hardware wallet): domain, types, primary type and the
 * message with uint64 fields as bigints.
 *
 * @example
 * const signature = await walletClient.signTypedData({ account, ...recordTypedData('SiteManifest', manifest) })
 */
export function recordTypedData<K extends RecordKind>(
  kind: K,
  message: RecordMessages[K],
): RecordTypedData[K] {
  return typedDefinition(kind, validateRecord(kind, message)) as unknown as RecordTypedData[K]
}

/**
 * The EIP-712 digest of a record: what its signature signs. Lets a settlement
 * job hash in one place and recover signers in bulk elsewhere.
 *
 * @example
 * const digest = hashRecord('BandwidthReceipt', receipt)
 * const signer = await recoverAddress({ hash: digest, signature })
 */
export function hashRecord<K extends RecordKind>(kind: K, message: RecordMessages[K]): Hex {
  return hashTypedData(typedDefinition(kind, validateRecord(kind, message)))
}

/**
 * The EIP-712 struct hash (`hashStruct`) of a record, without the domain.
 * A ticket's struct hash is its id, which receipts refer to.
 *
 * @example
 * const id = structHashRecord('Ticket', ticket)
 */
export function structHashRecord<K extends RecordKind>(kind: K, message: RecordMessages[K]): Hex {
  const typed = typedDefinition(kind, validateRecord(kind, message)) as unknown as {
    types: StructTypes
    message: Record<string, unknown>
  }
  return hashStruct({ data: typed.message, primaryType: kind, types: typed.types })
}

/**
 * Validates and signs a record with `account`, which must be the record's
 * signer (else `InvalidArgumentError`: a record signed by anyone else would
 * never verify).
 *
 * @example
 * const signed = await signRecord('Ticket', privateKeyToAccount(key), ticket)
 */
export async function signRecord<K extends RecordKind>(
  kind: K,
  account: RecordSigner,
  message: RecordMessages[K],
): Promise<Signed<RecordMessages[K]>> {
  const valid = validateRecord(kind, message)
  const signer = signerOfValid(kind, valid)
  if (typeof account?.address !== 'string' || typeof account.signTypedData !== 'function') {
    throw new InvalidArgumentError('account must be a viem local account')
  }
  if (getAddress(account.address) !== signer) {
    throw new InvalidArgumentError(
      `account ${account.address} cannot sign this ${kind}: its ${String(spec(kind).signer)} is ${signer}`,
    )
  }
  const signature = await account.signTypedData(typedDefinition(kind, valid))
  return { message: valid, signature: normalizeSignature(signature) }
}

/**
 * Checks a signed record, cheap checks first: options, strict format, the caller's
 * expectations (a health proof's challenge and node), freshness, the canonical signature
 * form, and that the recovered key is the record's signer. Returns the verified message.
 *
 * @throws InvalidArgumentError, InvalidFormatError, ExpiredError, StaleError, InvalidSignatureError
 * @example
 * const manifest = await verifyRecord('SiteManifest', signed, { knownSequence: 41 })
 */
export async function verifyRecord<K extends RecordKind>(
  kind: K,
  signed: Signed<RecordMessages[K]>,
  options?: RecordVerifyOptions[K],
): Promise<RecordMessages[K]> {
  const { check, maxAgeSeconds } = spec(kind)
  const clock = readClock(options)
  const expected = readExpectations(kind, options)
  const { message, signature } = parseStrict(kind, signedSchema(kind), signed)
  for (const [field, value] of expected) {
    const actual = (message as unknown as Record<string, unknown>)[field]
    if (actual !== value)
      throw new InvalidSignatureError(`${kind} ${field} is ${actual}, not the expected ${value}`)
  }
  if (maxAgeSeconds !== undefined) {
    const { timestamp } = message as { timestamp: number }
    checkTimestamp(kind, timestamp, clock.maxAge ?? maxAgeSeconds, clock)
  }
  check?.(message, clock)
  const digest = hashTypedData(typedDefinition(kind, message))
  const recovered = await recoverSigner(digest, signature)
  const signer = signerOfValid(kind, message)
  if (recovered !== signer) {
    throw new InvalidSignatureError(
      `${kind} was signed by ${recovered}, not by its ${String(spec(kind).signer)} ${signer}`,
    )
  }
  return message
}

/**
 * The canonical JSON text of a signed record: keys in EIP-712 field order
 * (`message` then `signature` outside), no whitespace.
 *
 * @example
 * const body = encodeRecord('BandwidthReceipt', signed)
 */
export function encodeRecord<K extends RecordKind>(kind: K, signed: Signed<RecordMessages[K]>): string {
  const valid = parseStrict(kind, signedSchema(kind), signed)
  return JSON.stringify({
    message: mapStruct(spec(kind).layout ?? spec(kind).types, kind, valid.message, identityLeaf),
    signature: valid.signature,
  })
}

/**
 * Parses a signed record from JSON text (or an already parsed value) and
 * validates it strictly. It does not check the signature: call `verifyRecord`.
 *
 * @throws InvalidFormatError
 * @example
 * const signed = decodeRecord('BandwidthReceipt', await request.text())
 */
export function decodeRecord<K extends RecordKind>(kind: K, input: unknown): Signed<RecordMessages[K]> {
  let value = input
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input)
    } catch (cause) {
      throw new InvalidFormatError(`invalid ${kind}: not JSON`, { cause })
    }
  }
  return parseStrict(kind, signedSchema(kind), value)
}
