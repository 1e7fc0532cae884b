/**
 * Whether a file descriptor was opened with `O_DSYNC`, read back from
 * Linux's `/proc/<pid>/fdinfo`: what the tests of synchronized writes check
 * in this process and in the CLI's.
 *
 * @module
 */

/** Linux's `O_DSYNC`, as `fdinfo` shows open flags (octal). */
const O_DSYNC = 0o10000;

/**
 * Whether `fd` of process `pid` was opened with `O_DSYNC` (Linux only).
 *
 * @param pid The process, or `self`.
 * @param fd The file descriptor.
 * @returns Whether its open flags hold `O_DSYNC`.
 */
export function openedWithDsync(pid: number | "self", fd: number | string): boolean {
  const info = Deno.readTextFileSync(`/proc/${pid}/fdinfo/${fd}`);
  return (parseInt(/^flags:\s*([0-7]+)$/m.exec(info)![1]!, 8) & O_DSYNC) !== 0;
}
