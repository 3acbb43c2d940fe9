/**
 * The release targets: one single-file binary per OS, architecture and libc, built by
 * `scripts/build.ts` with `bun build --compile`, archived as `claude-openai-proxy-<name>.tar.gz`
 * (`.zip` for Windows) and listed in `SHA256SUMS`. `scripts/homebrew.ts` and the release
 * workflow read the same table.
 */

/** The program's name: the binary inside every archive, the Homebrew formula, the npm bin. */
export const PROGRAM = "claude-openai-proxy";

/** One build target. */
export interface ReleaseTarget {
  /** e.g. "linux-arm64-musl"; also the archive's suffix. */
  name: string;
  /** `process.platform` naming. */
  os: "linux" | "darwin" | "win32";
  arch: "x64" | "arm64";
  /** "musl" for Alpine and other musl-libc Linux distributions. */
  libc?: "musl";
  /** The `--target` of `bun build --compile`. */
  bunTarget: string;
  /** The `--target` of `deno compile`, when Deno supports this target. */
  denoTarget?: string;
}

/**
 * Every target. No `-baseline` x64 variants: since Bun 1.4 the x64 runtime targets Nehalem
 * (SSE4.2) and picks AVX2/AVX-512 code at run time, and `bun-*-x64-baseline` resolves to the
 * same runtime (the downloaded runtimes have the same SHA-256), so one x64 build serves old CPUs.
 */
export const TARGETS: readonly ReleaseTarget[] = [
  {
    name: "linux-x64",
    os: "linux",
    arch: "x64",
    bunTarget: "bun-linux-x64",
    denoTarget: "x86_64-unknown-linux-gnu",
  },
  {
    name: "linux-x64-musl",
    os: "linux",
    arch: "x64",
    libc: "musl",
    bunTarget: "bun-linux-x64-musl",
  },
  {
    name: "linux-arm64",
    os: "linux",
    arch: "arm64",
    bunTarget: "bun-linux-arm64",
    denoTarget: "aarch64-unknown-linux-gnu",
  },
  {
    name: "linux-arm64-musl",
    os: "linux",
    arch: "arm64",
    libc: "musl",
    bunTarget: "bun-linux-arm64-musl",
  },
  {
    name: "darwin-x64",
    os: "darwin",
    arch: "x64",
    bunTarget: "bun-darwin-x64",
    denoTarget: "x86_64-apple-darwin",
  },
  {
    name: "darwin-arm64",
    os: "darwin",
    arch: "arm64",
    bunTarget: "bun-darwin-arm64",
    denoTarget: "aarch64-apple-darwin",
  },
  {
    name: "windows-x64",
    os: "win32",
    arch: "x64",
    bunTarget: "bun-windows-x64",
    denoTarget: "x86_64-pc-windows-msvc",
  },
];

/** The binary's file name for a target: `claude-openai-proxy` or `claude-openai-proxy.exe`. */
export function binaryName(target: Pick<ReleaseTarget, "os">): string {
  return target.os === "win32" ? `${PROGRAM}.exe` : PROGRAM;
}

/** The archive's file name for a target, e.g. `claude-openai-proxy-darwin-arm64.tar.gz`. */
export function archiveName(target: Pick<ReleaseTarget, "name" | "os">): string {
  return `${PROGRAM}-${target.name}${target.os === "win32" ? ".zip" : ".tar.gz"}`;
}

/**
 * Finds a target by name.
 * @throws Error listing the known names for an unknown one.
 */
export function targetByName(name: string): ReleaseTarget {
  const target = TARGETS.find((t) => t.name === name);
  if (target === undefined) {
    throw new Error(`Unknown target '${name}' (known: ${TARGETS.map((t) => t.name).join(", ")})`);
  }
  return target;
}
