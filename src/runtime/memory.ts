/**
 * The memory this process may use, bytes: the machine's memory (`node:os` `totalmem`, which
 * Bun and Deno implement), or less when a cgroup limits it (a container started with
 * `--memory`, a systemd unit with `MemoryMax=`), where `totalmem` still reports the host's.
 * cgroup v2: `/sys/fs/cgroup/memory.max` ("max" when unlimited); v1:
 * `/sys/fs/cgroup/memory/memory.limit_in_bytes` (a huge number when unlimited).
 * See https://docs.kernel.org/admin-guide/cgroup-v2.html#memory-interface-files.
 */
import { readFileSync } from "node:fs";
import { totalmem } from "node:os";

/** Where cgroups publish a memory limit (v2, then v1). */
export const CGROUP_MEMORY_FILES = [
  "/sys/fs/cgroup/memory.max",
  "/sys/fs/cgroup/memory/memory.limit_in_bytes",
];

/**
 * The smaller of `machineBytes` and the first limit found in `read(file)` for
 * {@link CGROUP_MEMORY_FILES} (a file that is missing, unreadable, "max" or not a positive
 * number sets no limit).
 */
export function memoryLimit(
  machineBytes: number,
  read: (file: string) => string | null,
  files: readonly string[] = CGROUP_MEMORY_FILES,
): number {
  for (const file of files) {
    const text = read(file)?.trim();
    if (text === undefined || text === "max") continue;
    const limit = Number(text);
    if (Number.isFinite(limit) && limit > 0) return Math.min(machineBytes, limit);
  }
  return machineBytes;
}

/** {@link memoryLimit} of this machine and process. */
export function totalMemory(): number {
  return memoryLimit(totalmem(), (file) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return null;
    }
  });
}
