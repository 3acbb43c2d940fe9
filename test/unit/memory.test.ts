import { describe, expect, it } from "vitest";
import { memoryLimit } from "../../src/runtime/memory.ts";

const GiB = 1024 ** 3;

describe("memoryLimit", () => {
  const files = ["/v2", "/v1"];
  it("is the machine's memory without a cgroup limit", () => {
    expect(memoryLimit(24 * GiB, () => null, files)).toBe(24 * GiB);
    expect(memoryLimit(24 * GiB, (f) => (f === "/v2" ? "max\n" : null), files)).toBe(24 * GiB);
    expect(memoryLimit(24 * GiB, () => "garbage", files)).toBe(24 * GiB);
  });

  it("is a container's limit (cgroup v2, else v1) when smaller", () => {
    expect(memoryLimit(24 * GiB, (f) => (f === "/v2" ? `${2 * GiB}\n` : null), files)).toBe(
      2 * GiB,
    );
    expect(memoryLimit(24 * GiB, (f) => (f === "/v1" ? `${GiB}` : null), files)).toBe(GiB);
    // v1's "unlimited" is a huge number.
    expect(memoryLimit(24 * GiB, () => "9223372036854771712", files)).toBe(24 * GiB);
  });
});
