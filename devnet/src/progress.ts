/** Boot progress for a terminal: one line per step, with how long it took. */
import type { DevnetProgress } from './devnet.ts'

export function createProgress(out: NodeJS.WritableStream, started = Date.now()): DevnetProgress {
  let current: { text: string; at: number } | undefined
  const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s]`
  return {
    step(text) {
      current = { text, at: Date.now() }
      out.write(`${stamp()} … ${text}\n`)
    },
    done(detail) {
      if (current === undefined) return
      const took = ((Date.now() - current.at) / 1000).toFixed(1)
      out.write(`${stamp()} ✓ ${current.text} (${took} s)${detail ? `: ${detail}` : ''}\n`)
      current = undefined
    },
  }
}
