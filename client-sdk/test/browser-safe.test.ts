import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const src = fileURLToPath(new URL('../src/', import.meta.url))

async function files(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await files(path)))
    else if (entry.name.endsWith('.ts')) out.push(path)
  }
  return out
}

describe('the core entry is browser-safe', () => {
  it('imports no node: module and no package but protocol and viem outside src/node/ and src/cli/', async () => {
    // src/node/ and src/cli/ (the shoal command line) are Node-only by design
    const core = (await files(src)).filter((f) => !/^(node|cli)\//.test(relative(src, f)))
    expect(core.length).toBeGreaterThan(10)
    for (const file of core) {
      const text = await readFile(file, 'utf8')
      const specifiers = [...text.matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!)
      for (const s of specifiers) {
        const allowed = s.startsWith('./') || s.startsWith('../') || s === '@shoal/protocol' || s === 'viem'
        expect(allowed, `${relative(src, file)} imports ${s}`).toBe(true)
      }
      expect(text, relative(src, file)).not.toMatch(/\bprocess\.|\bBuffer\b|require\(/)
    }
  })
})
