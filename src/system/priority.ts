// Background CPU priority for work that must never slow client traffic (the shadow candidate, the mirror thread).
// On Linux, SCHED_IDLE through chrt(1): such a thread runs only on a core nothing else wants, and any other thread that
// wakes takes the core from it at once; nice 10 alone still leaves it a tenth of a contended core, which showed in
// stable's p99. Node has no sched_setscheduler, hence chrt (util-linux). Without chrt, nice 10 alone; on Windows, neither.
import {readlinkSync} from 'node:fs'
import {setPriority} from 'node:os'

import {run, which} from './exec.js'

/** How much lower a background thread's nice value is: the fallback without SCHED_IDLE, and kept beside it. */
export const BACKGROUND_NICE = 10

let chrt: Promise<string | undefined> | undefined

function findChrt(): Promise<string | undefined> {
  chrt ??= process.platform === 'linux' ? which('chrt') : Promise.resolve(undefined)
  return chrt
}

/** The command line that starts `command` at background priority; every thread it starts inherits it. POSIX only. */
export async function backgroundCommand(command: string, args: string[]): Promise<{command: string; args: string[]}> {
  const nice = ['-n', String(BACKGROUND_NICE), command, ...args]
  const idle = await findChrt()
  return idle ? {command: idle, args: ['--idle', '0', 'nice', ...nice]} : {command: 'nice', args: nice}
}

/**
 * Lowers the calling thread alone (on Linux setpriority(2) and sched_setscheduler(2) take a thread id, which
 * /proc/thread-self names); the process's other threads keep theirs. What cannot be applied is left as it was.
 */
export async function backgroundThisThread(): Promise<void> {
  let tid: string
  try {
    tid = readlinkSync('/proc/thread-self').split('/').pop()!
    setPriority(Number(tid), BACKGROUND_NICE)
  } catch {
    return
  }
  const idle = await findChrt()
  if (idle) await run(idle, ['--idle', '--pid', '0', tid]).catch(() => undefined)
}
