/**
 * A byte progress bar on a terminal (`cli-progress`), and nothing at all when the stream
 * is not a TTY (piped or redirected output stays clean).
 */
import { SingleBar } from 'cli-progress'
import { formatBytes } from './format.ts'

export interface ProgressBar {
  update(loaded: number, total?: number, label?: string): void
  stop(): void
}

const NONE: ProgressBar = { update() {}, stop() {} }

/**
 * @example
 * const bar = createProgressBar(process.stderr, enabled)
 * bar.update(1024, 4096, 'fetch')
 * bar.stop()
 */
export function createProgressBar(stream: NodeJS.WriteStream, enabled: boolean): ProgressBar {
  if (!enabled || stream.isTTY !== true) return NONE
  const bar = new SingleBar({
    stream,
    format: '{label} [{bar}] {percentage}% | {loadedText} / {totalText} | {speed}',
    barCompleteChar: '█',
    barIncompleteChar: '░',
    hideCursor: true,
    clearOnComplete: false,
    fps: 10,
    etaBuffer: 20,
  })
  let started = false
  let label = ''
  const at = Date.now()
  return {
    update(loaded, total, next) {
      if (next !== undefined) label = next
      const payload = {
        label: label.padEnd(5),
        loadedText: formatBytes(loaded),
        totalText: total === undefined || total === 0 ? '?' : formatBytes(total),
        speed: `${formatBytes(Math.round(loaded / Math.max(0.001, (Date.now() - at) / 1000)))}/s`,
      }
      if (!started) {
        bar.start(Math.max(total ?? 0, 1), loaded, payload)
        started = true
        return
      }
      if (total !== undefined) bar.setTotal(Math.max(total, 1))
      bar.update(loaded, payload)
    },
    stop() {
      if (started) bar.stop()
    },
  }
}
