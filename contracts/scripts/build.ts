/**
 * `npm run build -w contracts`: compiles the Solidity sources with solc-js and writes
 * `src/generated/<Name>.ts` (and `test/generated/<Name>.ts` for test-only contracts).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { compileContracts, compilerVersion, PACKAGE_ROOT, renderAll } from './compile.ts'

const started = performance.now()
const { contracts, warnings } = compileContracts()
for (const warning of warnings) process.stderr.write(`${warning}\n`)
const files = renderAll(contracts)
for (const [path, contents] of files) {
  const target = join(PACKAGE_ROOT, path)
  mkdirSync(dirname(target), { recursive: true })
  writeFileSync(target, contents)
}
const ms = Math.round(performance.now() - started)
process.stdout.write(
  `compiled ${contracts.map((c) => c.name).join(', ')} with solc ${compilerVersion()} in ${ms} ms; wrote ${files.size} files\n`,
)
