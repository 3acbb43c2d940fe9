import { describe, expect, it } from "vitest";
import { defaultDataDir } from "../../src/data-dir.ts";

describe("defaultDataDir", () => {
  it("uses XDG_DATA_HOME on Linux", () => {
    expect(defaultDataDir({ XDG_DATA_HOME: "/data/xdg", HOME: "/home/ann" }, "linux")).toBe(
      "/data/xdg/claude-openai-proxy",
    );
    expect(defaultDataDir({ XDG_DATA_HOME: "/data/xdg/" }, "linux")).toBe(
      "/data/xdg/claude-openai-proxy",
    );
  });

  it("falls back to ~/.local/share on Linux and other Unixes", () => {
    expect(defaultDataDir({ HOME: "/home/ann" }, "linux")).toBe(
      "/home/ann/.local/share/claude-openai-proxy",
    );
    expect(defaultDataDir({ HOME: "/home/ann/" }, "freebsd")).toBe(
      "/home/ann/.local/share/claude-openai-proxy",
    );
    // The XDG spec ignores relative and empty values.
    expect(defaultDataDir({ XDG_DATA_HOME: "rel/dir", HOME: "/home/ann" }, "linux")).toBe(
      "/home/ann/.local/share/claude-openai-proxy",
    );
    expect(defaultDataDir({ XDG_DATA_HOME: "", HOME: "/home/ann" }, "linux")).toBe(
      "/home/ann/.local/share/claude-openai-proxy",
    );
    expect(defaultDataDir({ HOME: "/" }, "linux")).toBe("/.local/share/claude-openai-proxy");
  });

  it("uses ~/Library/Application Support on macOS, ignoring XDG", () => {
    expect(defaultDataDir({ HOME: "/Users/ann", XDG_DATA_HOME: "/x" }, "darwin")).toBe(
      "/Users/ann/Library/Application Support/claude-openai-proxy",
    );
  });

  it("uses %APPDATA% on Windows, else the roaming folder under %USERPROFILE%", () => {
    expect(
      defaultDataDir(
        { APPDATA: "C:\\Users\\Ann\\AppData\\Roaming", USERPROFILE: "C:\\Users\\Ann" },
        "win32",
      ),
    ).toBe("C:\\Users\\Ann\\AppData\\Roaming\\claude-openai-proxy");
    expect(defaultDataDir({ APPDATA: "D:\\" }, "win32")).toBe("D:\\claude-openai-proxy");
    expect(defaultDataDir({ USERPROFILE: "C:\\Users\\Ann\\" }, "win32")).toBe(
      "C:\\Users\\Ann\\AppData\\Roaming\\claude-openai-proxy",
    );
    // HOME (set by Git Bash and MSYS) is not the Windows profile: not used there.
    expect(defaultDataDir({ HOME: "/c/Users/Ann" }, "win32")).toBeNull();
  });

  it("takes the home directory from the argument when the environment names none", () => {
    expect(defaultDataDir({}, "linux", "/home/bob")).toBe(
      "/home/bob/.local/share/claude-openai-proxy",
    );
    expect(defaultDataDir({ HOME: "" }, "darwin", "/Users/bob")).toBe(
      "/Users/bob/Library/Application Support/claude-openai-proxy",
    );
    expect(defaultDataDir({}, "win32", "C:\\Users\\Bob")).toBe(
      "C:\\Users\\Bob\\AppData\\Roaming\\claude-openai-proxy",
    );
    // The environment wins over the argument.
    expect(defaultDataDir({ HOME: "/home/ann" }, "linux", "/home/bob")).toBe(
      "/home/ann/.local/share/claude-openai-proxy",
    );
  });

  it("is null when no home directory is known", () => {
    expect(defaultDataDir({}, "linux")).toBeNull();
    expect(defaultDataDir({}, "darwin", "")).toBeNull();
    expect(defaultDataDir({}, "win32")).toBeNull();
  });
});
