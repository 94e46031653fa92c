/**
 * Whether a process is still there, by its PID (signal 0 sends nothing). `EPERM` means
 * it exists but belongs to someone else: alive.
 *
 * @example
 * expect(pids.filter(isAlive)).toEqual([])
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
