import { describe, expect, it } from "vitest";
import {
  normalizeWindowsPath,
  parseCmdShim,
  type ResolveEnv,
  resolveCommand,
  resolveProgram,
} from "../../src/claude/resolve.ts";

const NPM = "C:\\Users\\me\\AppData\\Roaming\\npm";
const NODE = "C:\\Program Files\\nodejs\\node.exe";
const PACKAGE = `${NPM}\\node_modules\\@anthropic-ai\\claude-code`;

/** npm's cmd-shim (v6+) for a native program: bin/claude.exe of @anthropic-ai/claude-code 2.x. */
const NATIVE_SHIM = [
  "@ECHO off",
  "GOTO start",
  ":find_dp0",
  "SET dp0=%~dp0",
  "EXIT /b",
  ":start",
  "SETLOCAL",
  "CALL :find_dp0",
  '"%dp0%\\node_modules\\@anthropic-ai\\claude-code\\bin\\claude.exe"   %*',
  "",
].join("\r\n");

/** npm's cmd-shim (v6+) for a JavaScript bin (`#!/usr/bin/env node`). */
const JS_SHIM = [
  "@ECHO off",
  "GOTO start",
  ":find_dp0",
  "SET dp0=%~dp0",
  "EXIT /b",
  ":start",
  "SETLOCAL",
  "CALL :find_dp0",
  "",
  'IF EXIST "%dp0%\\node.exe" (',
  '  SET "_prog=%dp0%\\node.exe"',
  ") ELSE (",
  '  SET "_prog=node"',
  "  SET PATHEXT=%PATHEXT:;.JS;=;%",
  ")",
  "",
  'endLocal & goto #_undefined_# 2>NUL || title %COMSPEC% & "%_prog%"  "%dp0%\\node_modules\\@anthropic-ai\\claude-code\\cli.js" %*',
  "",
].join("\r\n");

/** npm 6's cmd-shim for a JavaScript bin. */
const OLD_JS_SHIM = [
  '@IF EXIST "%~dp0\\node.exe" (',
  '  "%~dp0\\node.exe"  "%~dp0\\node_modules\\@anthropic-ai\\claude-code\\cli.js" %*',
  ") ELSE (",
  "  @SETLOCAL",
  "  @SET PATHEXT=%PATHEXT:;.JS;=;%",
  '  node  "%~dp0\\node_modules\\@anthropic-ai\\claude-code\\cli.js" %*',
  ")",
].join("\r\n");

/** pnpm's shim in node_modules\.bin, pointing one directory up. */
const PNPM_SHIM = [
  "@SETLOCAL",
  '@IF EXIST "%~dp0\\node.exe" (',
  '  "%~dp0\\node.exe"  "%~dp0\\..\\@anthropic-ai\\claude-code\\cli.js" %*',
  ") ELSE (",
  "  @SET PATHEXT=%PATHEXT:;.JS;=;%",
  '  node  "%~dp0\\..\\@anthropic-ai\\claude-code\\cli.js" %*',
  ")",
].join("\r\n");

/** A Windows system with these files (path -> content) and this environment. */
function windows(
  files: Record<string, string>,
  env: Record<string, string> = { Path: `${NPM};C:\\Program Files\\nodejs` },
  readable = true,
): ResolveEnv {
  const system: ResolveEnv = {
    platform: "win32",
    env,
    isFile: (path) => Object.hasOwn(files, path),
  };
  if (readable) system.readTextFile = async (path) => files[path] ?? null;
  return system;
}

describe("resolveProgram on Windows", () => {
  it("follows npm's shim of the native CLI to claude.exe", async () => {
    const system = windows({
      [`${NPM}\\claude`]: "#!/bin/sh\n",
      [`${NPM}\\claude.cmd`]: NATIVE_SHIM,
      [`${NPM}\\claude.ps1`]: "",
      [`${PACKAGE}\\bin\\claude.exe`]: "MZ",
    });
    expect(await resolveProgram("claude", system)).toEqual({
      path: `${PACKAGE}\\bin\\claude.exe`,
      args: [],
    });
  });

  it("runs a JavaScript CLI's shim as node + script, node from PATH", async () => {
    const system = windows({
      [`${NPM}\\claude.cmd`]: JS_SHIM,
      [`${PACKAGE}\\cli.js`]: "",
      [NODE]: "MZ",
    });
    expect(await resolveProgram("claude", system)).toEqual({
      path: NODE,
      args: [`${PACKAGE}\\cli.js`],
    });
  });

  it("prefers a node.exe beside the shim, as the shim does", async () => {
    const system = windows({
      [`${NPM}\\claude.cmd`]: JS_SHIM,
      [`${NPM}\\node.exe`]: "MZ",
      [NODE]: "MZ",
    });
    expect(await resolveProgram("claude", system)).toEqual({
      path: `${NPM}\\node.exe`,
      args: [`${PACKAGE}\\cli.js`],
    });
  });

  it("reads npm 6's shims", async () => {
    const system = windows({ [`${NPM}\\claude.cmd`]: OLD_JS_SHIM, [NODE]: "MZ" });
    expect(await resolveProgram("claude", system)).toEqual({
      path: NODE,
      args: [`${PACKAGE}\\cli.js`],
    });
  });

  it("resolves `..` in pnpm's shims, with PATH and PATHEXT in upper case", async () => {
    const bin = "D:\\work\\app\\node_modules\\.bin";
    const system = windows(
      { [`${bin}\\claude.cmd`]: PNPM_SHIM, [NODE]: "MZ" },
      { PATH: `${bin};C:\\Program Files\\nodejs`, PATHEXT: ".COM;.EXE;.BAT;.CMD;.VBS;.JS" },
    );
    expect(await resolveProgram("claude", system)).toEqual({
      path: NODE,
      args: ["D:\\work\\app\\node_modules\\@anthropic-ai\\claude-code\\cli.js"],
    });
  });

  it("prefers claude.exe to claude.cmd in the same directory (PATHEXT order)", async () => {
    const system = windows({
      [`${NPM}\\claude.cmd`]: NATIVE_SHIM,
      [`${NPM}\\claude.exe`]: "MZ",
      [`${PACKAGE}\\bin\\claude.exe`]: "MZ",
    });
    expect(await resolveProgram("claude", system)).toEqual({
      path: `${NPM}\\claude.exe`,
      args: [],
    });
  });

  it("skips a shim whose program is missing and keeps searching PATH", async () => {
    const system = windows(
      {
        [`${NPM}\\claude.cmd`]: NATIVE_SHIM,
        "C:\\Users\\me\\.local\\bin\\claude.exe": "MZ",
      },
      { Path: `${NPM};C:\\Users\\me\\.local\\bin` },
    );
    expect(await resolveProgram("claude", system)).toEqual({
      path: "C:\\Users\\me\\.local\\bin\\claude.exe",
      args: [],
    });
  });

  it("follows a shim given as a path (--claude-path)", async () => {
    const system = windows({
      [`${NPM}\\claude.cmd`]: NATIVE_SHIM,
      [`${PACKAGE}\\bin\\claude.exe`]: "MZ",
    });
    expect(await resolveProgram(`${NPM}\\claude.cmd`, system)).toEqual({
      path: `${PACKAGE}\\bin\\claude.exe`,
      args: [],
    });
    expect(await resolveProgram(`${NPM}\\claude`, system)).toEqual({
      path: `${PACKAGE}\\bin\\claude.exe`,
      args: [],
    });
  });

  it("finds nothing when shims cannot be read or nothing matches", async () => {
    const files = { [`${NPM}\\claude.cmd`]: NATIVE_SHIM, [`${PACKAGE}\\bin\\claude.exe`]: "MZ" };
    expect(await resolveProgram("claude", windows(files, undefined, false))).toBeNull();
    expect(await resolveProgram("claude", windows({}))).toBeNull();
    expect(await resolveProgram("claude", windows(files, {}))).toBeNull();
  });
});

describe("resolveCommand", () => {
  it("returns programs that start as they are, never a shim", () => {
    const files = {
      [`${NPM}\\claude.cmd`]: NATIVE_SHIM,
      [`${PACKAGE}\\bin\\claude.exe`]: "MZ",
    };
    expect(resolveCommand("claude", windows(files))).toBeNull();
    expect(resolveCommand("claude", windows({ ...files, [`${NPM}\\claude.exe`]: "MZ" }))).toBe(
      `${NPM}\\claude.exe`,
    );
    expect(resolveCommand(`${PACKAGE}\\bin\\claude.exe`, windows(files))).toBe(
      `${PACKAGE}\\bin\\claude.exe`,
    );
  });

  it("searches PATH on POSIX and takes a path as given", async () => {
    const system: ResolveEnv = {
      platform: "linux",
      env: { PATH: "/usr/bin:/home/me/.local/bin" },
      isFile: (path) => path === "/home/me/.local/bin/claude" || path === "/opt/claude",
    };
    expect(resolveCommand("claude", system)).toBe("/home/me/.local/bin/claude");
    expect(resolveCommand("/opt/claude", system)).toBe("/opt/claude");
    expect(resolveCommand("./claude", system)).toBeNull();
    expect(resolveCommand("missing", system)).toBeNull();
    expect(await resolveProgram("claude", system)).toEqual({
      path: "/home/me/.local/bin/claude",
      args: [],
    });
  });
});

describe("parseCmdShim", () => {
  it("lists the commands a shim may run, in order", () => {
    expect(parseCmdShim(JS_SHIM, `${NPM}\\claude.cmd`)).toEqual([
      { program: `${NPM}\\node.exe`, args: [`${PACKAGE}\\cli.js`] },
      { program: "node", args: [`${PACKAGE}\\cli.js`] },
    ]);
    expect(parseCmdShim(NATIVE_SHIM, `${NPM}\\claude.cmd`)).toEqual([
      { program: `${PACKAGE}\\bin\\claude.exe`, args: [] },
    ]);
  });

  it("keeps flags a shebang passes to node", () => {
    const shim = JS_SHIM.replace('"%_prog%"  "%dp0%', '"%_prog%" --no-warnings "%dp0%');
    expect(parseCmdShim(shim, "C:\\npm\\claude.cmd")).toEqual([
      {
        program: "C:\\npm\\node.exe",
        args: ["--no-warnings", `C:\\npm\\node_modules\\@anthropic-ai\\claude-code\\cli.js`],
      },
      {
        program: "node",
        args: ["--no-warnings", `C:\\npm\\node_modules\\@anthropic-ai\\claude-code\\cli.js`],
      },
    ]);
  });

  it("reads a one-line wrapper and ignores lines without %*", () => {
    expect(
      parseCmdShim("@echo off\r\nC:\\tools\\claude.exe %*\r\n", "C:\\bin\\claude.bat"),
    ).toEqual([{ program: "C:\\tools\\claude.exe", args: [] }]);
    expect(parseCmdShim("@echo off\r\necho hello\r\n", "C:\\bin\\claude.bat")).toEqual([]);
  });
});

describe("normalizeWindowsPath", () => {
  it.each([
    ["C:\\npm\\\\node_modules\\x.exe", "C:\\npm\\node_modules\\x.exe"],
    ["C:\\a\\b\\..\\..\\c\\.\\d.js", "C:\\c\\d.js"],
    ["C:/a/b.exe", "C:\\a\\b.exe"],
    ["\\\\server\\share\\\\x.exe", "\\\\server\\share\\x.exe"],
  ])("%s -> %s", (input, output) => {
    expect(normalizeWindowsPath(input)).toBe(output);
  });
});
