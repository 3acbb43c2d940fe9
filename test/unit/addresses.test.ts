import { describe, expect, it } from "vitest";
import {
  classifyAddress,
  isAllowedAddress,
  isIpLiteral,
  parseIPv4,
  parseIPv6,
} from "../../src/net/addresses.ts";

/** The hostname a URL parser makes of `host` (odd IPv4 spellings become dotted quads). */
const urlHost = (host: string) => new URL(`http://${host}/`).hostname;

describe("parseIPv4", () => {
  it.each([
    ["127.0.0.1", 0x7f000001],
    ["2130706433", 0x7f000001],
    ["0177.0.0.1", 0x7f000001],
    ["127.1", 0x7f000001],
    ["0x7f.1", 0x7f000001],
    ["0x7f000001", 0x7f000001],
    ["10.1.2", 0x0a010002],
    ["255.255.255.255", 0xffffffff],
  ])("reads %s", (text, value) => {
    expect(parseIPv4(text)).toBe(value);
  });

  it.each(["", "1.2.3.4.5", "256.0.0.1", "4294967296", "1.2.3.256", "08.0.0.1", "a.b", "1e3"])(
    "refuses %j",
    (text) => {
      expect(parseIPv4(text)).toBeNull();
    },
  );
});

describe("parseIPv6", () => {
  it("reads the shorthand, brackets, zones and a dotted tail", () => {
    expect(Array.from(parseIPv6("::1") ?? [])).toEqual([...new Array(15).fill(0), 1]);
    expect(parseIPv6("[fe80::1%eth0]")?.[0]).toBe(0xfe);
    expect(Array.from(parseIPv6("::ffff:127.0.0.1") ?? []).slice(10)).toEqual([
      0xff, 0xff, 127, 0, 0, 1,
    ]);
  });

  it.each(["1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "::g", "1.2.3.4", "::1.2.3.256", "example"])(
    "refuses %j",
    (text) => {
      expect(parseIPv6(text)).toBeNull();
    },
  );
});

describe("classifyAddress", () => {
  it.each([
    // IPv4
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["10.0.0.1", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["192.168.1.1", "private"],
    ["169.254.1.1", "link-local"],
    ["169.254.169.254", "metadata"],
    ["169.254.170.2", "metadata"],
    ["168.63.129.16", "metadata"],
    ["100.100.100.200", "metadata"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["100.64.0.1", "shared"],
    ["100.127.255.255", "shared"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["240.0.0.1", "reserved"],
    ["192.0.2.1", "reserved"],
    ["198.18.0.1", "reserved"],
    ["8.8.8.8", "public"],
    ["172.32.0.1", "public"],
    ["100.128.0.1", "public"],
    ["1.1.1.1", "public"],
    // odd spellings, read directly
    ["2130706433", "loopback"],
    ["0177.0.0.1", "loopback"],
    ["127.1", "loopback"],
    ["0x7f.0.0.1", "loopback"],
    ["0xa9fea9fe", "metadata"],
    // IPv6
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["::", "unspecified"],
    ["fc00::1", "unique-local"],
    ["fd12:3456::1", "unique-local"],
    ["fd00:ec2::254", "metadata"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["febf::1", "link-local"],
    ["fec0::1", "private"],
    ["ff02::1", "multicast"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:169.254.169.254", "metadata"],
    ["::ffff:8.8.8.8", "public"],
    ["::ffff:0:127.0.0.1", "loopback"],
    ["::127.0.0.1", "reserved"],
    ["64:ff9b::127.0.0.1", "loopback"],
    ["64:ff9b::a9fe:a9fe", "metadata"],
    ["64:ff9b::192.168.0.1", "private"],
    ["64:ff9b::8.8.8.8", "public"],
    ["64:ff9b:1::1", "private"],
    ["2002:7f00:1::1", "loopback"],
    ["2002:c0a8:101::1", "private"],
    ["2002:a9fe:a9fe::", "metadata"],
    ["2002:808:808::1", "public"],
    ["2001::1", "reserved"],
    ["2001:db8::1", "reserved"],
    ["100::1", "reserved"],
    ["2606:4700:4700::1111", "public"],
    ["2a00:1450:4001::1", "public"],
    // not addresses
    ["localhost", "invalid"],
    ["example.com", "invalid"],
    ["", "invalid"],
  ])("%s is %s", (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it.each([
    ["2130706433", "loopback"],
    ["0177.0.0.1", "loopback"],
    ["127.1", "loopback"],
    ["0x7f.1", "loopback"],
    ["0", "unspecified"],
    ["0xa9.0376.43518", "metadata"],
    ["[::ffff:127.0.0.1]", "loopback"],
    ["[0:0:0:0:0:ffff:7f00:0001]", "loopback"],
    ["[::1]", "loopback"],
    ["[fd00:ec2:0::254]", "metadata"],
  ])("%s as a URL parser normalises it is %s", (host, kind) => {
    expect(classifyAddress(urlHost(host))).toBe(kind);
  });
});

describe("isIpLiteral", () => {
  it("tells addresses from names", () => {
    expect(isIpLiteral("127.0.0.1")).toBe(true);
    expect(isIpLiteral("[::1]")).toBe(true);
    expect(isIpLiteral("localhost")).toBe(false);
    expect(isIpLiteral("images.example.com")).toBe(false);
  });
});

describe("isAllowedAddress", () => {
  it("allows only public addresses by default", () => {
    expect(isAllowedAddress("8.8.8.8", false)).toBe(true);
    expect(isAllowedAddress("2606:4700:4700::1111", false)).toBe(true);
    for (const address of ["127.0.0.1", "10.0.0.1", "::1", "fe80::1", "0.0.0.0", "100.64.0.1"]) {
      expect(isAllowedAddress(address, false)).toBe(false);
    }
  });

  it("allows private ones when asked, but never metadata endpoints or non-addresses", () => {
    expect(isAllowedAddress("127.0.0.1", true)).toBe(true);
    expect(isAllowedAddress("192.168.1.10", true)).toBe(true);
    expect(isAllowedAddress("fd12::1", true)).toBe(true);
    expect(isAllowedAddress("169.254.169.254", true)).toBe(false);
    expect(isAllowedAddress("::ffff:169.254.169.254", true)).toBe(false);
    expect(isAllowedAddress("fd00:ec2::254", true)).toBe(false);
    expect(isAllowedAddress("localhost", true)).toBe(false);
  });
});
