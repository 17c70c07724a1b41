// Whether a process on this machine still runs: for lock holders, a gateway and its model servers, and store writers.
import {readFileSync} from 'node:fs'
import {hostname} from 'node:os'

/**
 * True while `pid` runs and is the process that was recorded (the same start time, when one was recorded: a pid
 * reused by another process does not count). A holder recorded on another host (a shared folder) cannot be checked
 * and is taken as alive.
 */
export function isAlive(holder: {pid: number; host?: string; started?: string}): boolean {
  if (holder.host !== undefined && holder.host !== hostname()) return true
  try {
    process.kill(holder.pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
  const started = processStart(holder.pid)
  return holder.started === undefined || started === undefined || started === holder.started
}

/** Field 22 of /proc/PID/stat: start time in clock ticks since boot; undefined off Linux. */
export function processStart(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}
