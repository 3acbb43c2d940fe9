/**
 * File-system and temp-dir helpers shared by the three runtimes. Bun and Deno both
 * implement `node:fs` and `node:os`, so one implementation serves all of them.
 */

import { statSync } from "node:fs";
import {
  appendFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { errorCode } from "./child.ts";
import type { Runtime } from "./types.ts";

/** The file-system part of {@link Runtime}. */
export type RuntimeFs = Pick<
  Runtime,
  | "tmpdir"
  | "mkdir"
  | "mkdtemp"
  | "writeFile"
  | "appendFile"
  | "readTextFile"
  | "remove"
  | "rename"
  | "listDir"
  | "isFile"
  | "realDir"
>;

/** `node:fs` implementations of the {@link Runtime} file functions. */
export const nodeFs: RuntimeFs = {
  tmpdir: () => tmpdir(),
  mkdir: async (path) => {
    await mkdir(path, { recursive: true, mode: 0o700 });
  },
  mkdtemp: (parent, prefix) => mkdtemp(join(parent, prefix)),
  writeFile: (path, data) => writeFile(path, data, { flag: "wx", mode: 0o600 }),
  appendFile: (path, data) => appendFile(path, data, { mode: 0o600 }),
  readTextFile: async (path) => {
    try {
      return await readFile(path, "utf8");
    } catch (error) {
      if (errorCode(error) === "ENOENT") return null;
      throw error;
    }
  },
  remove: (path) => rm(path, { recursive: true, force: true }),
  rename: (from, to) => rename(from, to),
  listDir: async (path) => {
    try {
      return await readdir(path);
    } catch (error) {
      if (errorCode(error) === "ENOENT") return [];
      throw error;
    }
  },
  isFile: (path) => {
    try {
      return statSync(path).isFile();
    } catch {
      return false;
    }
  },
  realDir: async (path) => {
    try {
      const real = await realpath(path);
      return statSync(real).isDirectory() ? real : null;
    } catch {
      return null;
    }
  },
};
