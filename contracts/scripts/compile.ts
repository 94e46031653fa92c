/**
 * Compiles Shoal's Solidity sources with solc-js and renders the generated TypeScript
 * modules (ABI + bytecode). Used by `scripts/build.ts` (writes the files) and by the
 * test that checks the committed files are up to date. Nothing runs at import time.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import solc from 'solc'

/** The contracts package root (…/contracts). */
export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url))
/** Where the Solidity sources live, relative to the package root. */
export const SOURCES_DIR = 'contracts'

/**
 * Compiler settings. `evmVersion` matches the hardfork EDR (Hardhat 3's in-process
 * chain) runs by default, `osaka`; the contracts need at least `cancun` (transient
 * storage for the reentrancy guard). The IR pipeline (`viaIR`) takes ~1,000 gas off a
 * claim (measured: 78,818 → 77,786 at proof depth 10) for a slower compile (~15 s).
 */
export const COMPILER_SETTINGS = {
  evmVersion: 'osaka',
  optimizer: { enabled: true, runs: 10_000 },
  viaIR: true,
} as const

/** One compiled contract. */
export interface CompiledContract {
  name: string
  /** Source unit name, e.g. `contracts/ShoalToken.sol`. */
  source: string
  abi: unknown[]
  bytecode: `0x${string}`
  storageLayout: StorageLayout
}

export interface StorageLayout {
  storage: Array<{ label: string; slot: string; offset: number; type: string; contract: string }>
}

interface SolcError {
  severity: 'error' | 'warning' | 'info'
  errorCode?: string
  sourceLocation?: { file: string }
  formattedMessage: string
}

/** solc's warning code for any use of transient storage (EIP-1153). */
const TRANSIENT_STORAGE_WARNING = '2394'

interface SolcOutput {
  errors?: SolcError[]
  contracts?: Record<
    string,
    Record<string, { abi: unknown[]; evm: { bytecode: { object: string } }; storageLayout: StorageLayout }>
  >
}

const require = createRequire(import.meta.url)

/** Every `.sol` file under `contracts/`, keyed by source unit name (posix separators). */
export function readSources(root: string = PACKAGE_ROOT): Record<string, { content: string }> {
  const dir = join(root, SOURCES_DIR)
  const sources: Record<string, { content: string }> = {}
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.sol'))
    .sort()
  for (const file of files) {
    const unit = relative(root, join(dir, file)).split(sep).join('/')
    sources[unit] = { content: readFileSync(join(dir, file), 'utf8') }
  }
  return sources
}

/** Resolves `@openzeppelin/...` (and any other package) imports from node_modules. */
function findImports(path: string): { contents: string } | { error: string } {
  try {
    return { contents: readFileSync(require.resolve(path), 'utf8') }
  } catch (err) {
    return { error: `cannot resolve import "${path}": ${(err as Error).message}` }
  }
}

/** The solc version that compiles (e.g. `0.8.37+commit.f401782d.Emscripten.clang`). */
export function compilerVersion(): string {
  return solc.version() as string
}

/** What a compile produced: the deployable contracts and solc's warnings. */
export interface CompileResult {
  contracts: CompiledContract[]
  warnings: string[]
}

/**
 * Compiles every source under `contracts/` and returns its deployable contracts
 * (abstract contracts, interfaces and dependencies' libraries are left out) and the
 * warnings. Throws on any compiler error, with solc's formatted messages.
 */
export function compileContracts(root: string = PACKAGE_ROOT): CompileResult {
  const sources = readSources(root)
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      ...COMPILER_SETTINGS,
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'storageLayout'] } },
    },
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports })) as SolcOutput
  const problems = output.errors ?? []
  const errors = problems.filter((e) => e.severity === 'error')
  if (errors.length > 0) {
    throw new Error(`solc failed:\n${errors.map((e) => e.formattedMessage).join('\n')}`)
  }
  const contracts: CompiledContract[] = []
  for (const source of Object.keys(sources)) {
    for (const [name, out] of Object.entries(output.contracts?.[source] ?? {})) {
      if (out.evm.bytecode.object === '') continue // abstract or interface
      contracts.push({
        name,
        source,
        abi: out.abi,
        bytecode: `0x${out.evm.bytecode.object}`,
        storageLayout: out.storageLayout,
      })
    }
  }
  const warnings = problems
    .filter((e) => e.severity !== 'error' && !isKnownTransientStorageWarning(e))
    .map((e) => e.formattedMessage)
  return { contracts, warnings }
}

/**
 * solc warns on every `tstore`; OpenZeppelin's transient reentrancy guard (in its
 * TransientSlot library) is the use the warning itself calls safe.
 */
function isKnownTransientStorageWarning(e: SolcError): boolean {
  return (
    e.errorCode === TRANSIENT_STORAGE_WARNING &&
    e.sourceLocation?.file === '@openzeppelin/contracts/utils/TransientSlot.sol'
  )
}

/** `ShoalToken` → `shoalToken`. */
export function camelName(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1)
}

/** Test-only contracts (under `contracts/test/`) go to `test/generated/`, the rest to `src/generated/`. */
export function outputPathOf(contract: CompiledContract): string {
  const dir = contract.source.startsWith(`${SOURCES_DIR}/test/`) ? 'test/generated' : 'src/generated'
  return `${dir}/${contract.name}.ts`
}

/** The TypeScript module for one contract: its ABI and creation bytecode, `as const`. */
export function renderModule(contract: CompiledContract, version: string = compilerVersion()): string {
  const id = camelName(contract.name)
  const settings = `evmVersion ${COMPILER_SETTINGS.evmVersion}, optimizer runs ${COMPILER_SETTINGS.optimizer.runs}, via IR`
  return [
    `// Generated by contracts/scripts/build.ts from ${contract.source}`,
    `// with solc ${version} (${settings}). Do not edit: run \`npm run build -w contracts\`.`,
    '',
    `/** ABI of ${contract.name}. */`,
    `export const ${id}Abi = ${JSON.stringify(contract.abi, null, 2)} as const`,
    '',
    `/** Creation bytecode of ${contract.name}. */`,
    `export const ${id}Bytecode = '${contract.bytecode}' as const`,
    '',
  ].join('\n')
}

/** The barrel `src/generated/index.ts` over the package's (non-test) contracts. */
export function renderIndex(contracts: CompiledContract[]): string {
  const lines = contracts
    .filter((c) => outputPathOf(c).startsWith('src/'))
    .map((c) => `export { ${camelName(c.name)}Abi, ${camelName(c.name)}Bytecode } from './${c.name}.ts'`)
  return [
    '// Generated by contracts/scripts/build.ts. Do not edit: run `npm run build -w contracts`.',
    ...lines,
    '',
  ].join('\n')
}

/** Every generated file: package-relative path → contents. */
export function renderAll(contracts: CompiledContract[]): Map<string, string> {
  const version = compilerVersion()
  const files = new Map<string, string>()
  for (const contract of contracts) files.set(outputPathOf(contract), renderModule(contract, version))
  files.set('src/generated/index.ts', renderIndex(contracts))
  return files
}
