/**
 * The files of a directory as site paths: what `publishDirectory` publishes.
 *
 * Policy (documented in docs/publisher.md):
 * - a file's site path is its path under the directory, `/`-separated and in Unicode NFC
 *   (macOS writes NFD), checked with the protocol's `pathProblem`;
 * - hidden entries (names starting with `.`) are skipped, except `.well-known`, unless
 *   `hidden: 'include'`;
 * - symbolic links are followed when their target lies inside the directory, and refused
 *   (`InvalidArgumentError`) when it lies outside: publishing never reads a file the
 *   directory does not contain; a link cycle is refused too;
 * - anything that is not a regular file or a directory (sockets, FIFOs, devices) is
 *   refused, as is a name that is not a valid site path or two names that are one path
 *   after NFC normalization.
 */
import { lstat, readdir, realpath, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import {
  comparePaths,
  InvalidArgumentError,
  NotFoundError,
  pathProblem,
  throwIfAborted,
} from '@shoal/protocol'

export interface WalkOptions {
  /** `skip` (default): leave out names starting with `.` (but not `.well-known`). */
  hidden?: 'skip' | 'include'
  signal?: AbortSignal
}

export interface WalkedFile {
  /** The site path, e.g. `/img/logo.png`. */
  path: string
  /** The file to read (a link's target when the entry is a symbolic link). */
  file: string
  size: number
}

function isInside(root: string, target: string): boolean {
  const rel = relative(root, target)
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep))
}

/**
 * Lists the files to publish under `dir`, sorted by site path in code point order.
 *
 * @example
 * const files = await walkDirectory('./public')
 * // [{ path: '/index.html', file: '/home/me/public/index.html', size: 1234 }, …]
 */
export async function walkDirectory(dir: string, options: WalkOptions = {}): Promise<WalkedFile[]> {
  const hidden = options.hidden ?? 'skip'
  if (hidden !== 'skip' && hidden !== 'include')
    throw new InvalidArgumentError('hidden must be "skip" or "include"')
  let root: string
  try {
    root = await realpath(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`no directory at ${dir}`)
    throw err
  }
  if (!(await stat(root)).isDirectory()) throw new InvalidArgumentError(`${dir} is not a directory`)

  const out: WalkedFile[] = []
  const seen = new Map<string, string>()
  const walk = async (real: string, segments: string[], ancestors: Set<string>): Promise<void> => {
    throwIfAborted(options.signal)
    const names = (await readdir(real)).sort()
    for (const name of names) {
      if (hidden === 'skip' && name.startsWith('.') && name !== '.well-known') continue
      const shown = [...segments, name].join('/')
      let target = join(real, name)
      let info = await lstat(target)
      if (info.isSymbolicLink()) {
        let resolved: string
        try {
          resolved = await realpath(target)
        } catch {
          throw new InvalidArgumentError(`${shown} is a symbolic link to nothing`)
        }
        if (!isInside(root, resolved)) {
          throw new InvalidArgumentError(
            `${shown} is a symbolic link to ${resolved}, outside ${dir}; refusing it`,
          )
        }
        target = resolved
        info = await stat(target)
      }
      if (info.isDirectory()) {
        if (ancestors.has(target)) throw new InvalidArgumentError(`${shown} is a symbolic link cycle`)
        await walk(target, [...segments, name], new Set([...ancestors, target]))
        continue
      }
      if (!info.isFile()) throw new InvalidArgumentError(`${shown} is not a regular file or directory`)
      const path = `/${[...segments, name].join('/')}`.normalize('NFC')
      const problem = pathProblem(path)
      if (problem !== undefined) throw new InvalidArgumentError(`${shown}: site path ${path} ${problem}`)
      const before = seen.get(path)
      if (before !== undefined) {
        throw new InvalidArgumentError(`${shown} and ${before} are the same site path ${path} (Unicode NFC)`)
      }
      seen.set(path, shown)
      out.push({ path, file: target, size: info.size })
    }
  }
  await walk(root, [], new Set([root]))
  return out.sort((a, b) => comparePaths(a.path, b.path))
}
