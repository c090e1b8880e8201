// What other processes on this machine spend: their CPU time from /proc (Linux), for figures of
// CPU per request or per job across every process a load keeps busy.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** A process's user + system CPU time so far, in ms (/proc/<pid>/stat, clock ticks of 10 ms); 0 when it is gone. */
export const cpuMsOf = (pid: number | undefined) => {
  if (!pid) return 0
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0
  }
}

/** The ids `pgrep` finds with these arguments (none when it finds none). */
export const pidsOf = (...args: string[]) => {
  try {
    return execFileSync('pgrep', args, { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
  } catch {
    return []
  }
}

/**
 * Starts counting the CPU of named groups of processes; `per(count)` then gives each group's CPU
 * since, in µs per item, for the groups that have a process.
 */
export const cpuMeter = (groups: Record<string, number[]>) => {
  const sum = (pids: number[]) => pids.reduce((total, pid) => total + cpuMsOf(pid), 0)
  const present = Object.entries(groups).filter(([, pids]) => pids.length > 0)
  const before = present.map(([, pids]) => sum(pids))
  return {
    per: (count: number): Record<string, number> =>
      Object.fromEntries(
        present.map(([name, pids], i) => [
          name,
          Math.round(((sum(pids) - before[i]!) * 1000) / Math.max(1, count)),
        ]),
      ),
  }
}
