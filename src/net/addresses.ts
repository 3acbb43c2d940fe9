/**
 * What an IP address is, for deciding whether the proxy may connect to it on a client's behalf
 * (image URLs: SSRF). Pure: parses literal addresses only, never resolves a name.
 * Ranges from the IANA special-purpose registries (RFC 6890 and its updates).
 */

/** The kind of an address; only `public` is reachable without `--image-fetch-allow-private`. */
export type AddressKind =
  | "public"
  | "loopback"
  | "private"
  | "unique-local"
  | "link-local"
  | "unspecified"
  | "shared"
  | "metadata"
  | "multicast"
  | "broadcast"
  | "reserved"
  | "invalid";

/**
 * Parses an IPv4 address the way URL parsers and `inet_aton` do: one to four parts, each
 * decimal, octal (leading 0) or hex (0x); the last part fills the remaining bytes
 * (`2130706433`, `0177.0.0.1`, `127.1` and `0x7f.1` are all 127.0.0.1).
 * @returns the address as an unsigned 32-bit number, or null.
 */
export function parseIPv4(text: string): number | null {
  const parts = text.endsWith(".") ? text.slice(0, -1).split(".") : text.split(".");
  if (parts.length === 0 || parts.length > 4) return null;
  const numbers: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : Number.parseInt(part, 16);
    else if (/^0[0-7]+$/.test(part)) value = Number.parseInt(part, 8);
    else if (/^(0|[1-9][0-9]*)$/.test(part)) value = Number(part);
    else return null;
    numbers.push(value);
  }
  const last = numbers.pop() ?? 0;
  if (numbers.some((n) => n > 255) || last >= 256 ** (4 - numbers.length)) return null;
  let address = 0;
  numbers.forEach((n, i) => {
    address += n * 256 ** (3 - i);
  });
  return address + last;
}

/**
 * Parses an IPv6 address (`::` shorthand, a dotted IPv4 tail, optional brackets and zone).
 * @returns its 16 bytes, or null.
 */
export function parseIPv6(text: string): Uint8Array | null {
  let s = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(":")) return null;
  const words: number[] = [];
  const tail = /(?:^|:)(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (tail?.[1] !== undefined) {
    const v4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/.test(tail[1])
      ? parseIPv4(tail[1])
      : null;
    if (v4 === null) return null;
    s = `${s.slice(0, s.length - tail[1].length)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parse = (half: string): number[] | null => {
    if (half === "") return [];
    const out: number[] = [];
    for (const word of half.split(":")) {
      if (!/^[0-9a-f]{1,4}$/i.test(word)) return null;
      out.push(Number.parseInt(word, 16));
    }
    return out;
  };
  const head = parse(halves[0] ?? "");
  const rest = halves.length === 2 ? parse(halves[1] ?? "") : [];
  if (head === null || rest === null) return null;
  if (halves.length === 2) {
    if (head.length + rest.length > 7) return null;
    words.push(...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest);
  } else {
    if (head.length !== 8) return null;
    words.push(...head);
  }
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  return bytes;
}

const v4 = (a: number, b: number, c: number, d: number) =>
  ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

/** IPv4 ranges as [first address, prefix length, kind]; the first match wins. */
const V4_RANGES: readonly (readonly [number, number, AddressKind])[] = [
  [v4(169, 254, 169, 254), 32, "metadata"], // AWS, GCP, Azure, OpenStack, DigitalOcean, ...
  [v4(169, 254, 170, 2), 32, "metadata"], // AWS ECS task metadata
  [v4(168, 63, 129, 16), 32, "metadata"], // Azure WireServer
  [v4(100, 100, 100, 200), 32, "metadata"], // Alibaba Cloud
  [v4(255, 255, 255, 255), 32, "broadcast"],
  [v4(0, 0, 0, 0), 8, "unspecified"],
  [v4(10, 0, 0, 0), 8, "private"],
  [v4(100, 64, 0, 0), 10, "shared"], // carrier-grade NAT
  [v4(127, 0, 0, 0), 8, "loopback"],
  [v4(169, 254, 0, 0), 16, "link-local"],
  [v4(172, 16, 0, 0), 12, "private"],
  [v4(192, 0, 0, 0), 24, "reserved"], // IETF protocol assignments
  [v4(192, 0, 2, 0), 24, "reserved"], // documentation
  [v4(192, 88, 99, 0), 24, "reserved"], // 6to4 relay anycast
  [v4(192, 168, 0, 0), 16, "private"],
  [v4(198, 18, 0, 0), 15, "reserved"], // benchmarking
  [v4(198, 51, 100, 0), 24, "reserved"], // documentation
  [v4(203, 0, 113, 0), 24, "reserved"], // documentation
  [v4(224, 0, 0, 0), 4, "multicast"],
  [v4(240, 0, 0, 0), 4, "reserved"],
];

function classifyV4(address: number): AddressKind {
  for (const [first, prefix, kind] of V4_RANGES) {
    const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    if ((address & mask) >>> 0 === first) return kind;
  }
  return "public";
}

function v4At(bytes: Uint8Array, offset: number): number {
  return (
    (((bytes[offset] ?? 0) << 24) |
      ((bytes[offset + 1] ?? 0) << 16) |
      ((bytes[offset + 2] ?? 0) << 8) |
      (bytes[offset + 3] ?? 0)) >>>
    0
  );
}

function classifyV6(bytes: Uint8Array): AddressKind {
  const b = (i: number) => bytes[i] ?? 0;
  const zeroUpTo = (n: number) => bytes.subarray(0, n).every((x) => x === 0);
  if (zeroUpTo(15)) return b(15) === 1 ? "loopback" : b(15) === 0 ? "unspecified" : "reserved";
  // ::ffff:a.b.c.d (IPv4-mapped) and ::ffff:0:a.b.c.d (IPv4-translated)
  // An address that carries an IPv4 one is what that IPv4 address is.
  if (zeroUpTo(10) && b(10) === 0xff && b(11) === 0xff) return classifyV4(v4At(bytes, 12));
  if (zeroUpTo(8) && b(8) === 0xff && b(9) === 0xff && b(10) === 0 && b(11) === 0) {
    return classifyV4(v4At(bytes, 12));
  }
  if (zeroUpTo(12)) return "reserved"; // ::a.b.c.d, the deprecated IPv4-compatible form
  // 64:ff9b::/96, the well-known NAT64 prefix: the gateway connects to the embedded address.
  if (b(0) === 0 && b(1) === 0x64 && b(2) === 0xff && b(3) === 0x9b) {
    if (bytes.subarray(4, 12).every((x) => x === 0)) return classifyV4(v4At(bytes, 12));
    if (b(4) === 0 && b(5) === 1) return "private"; // 64:ff9b:1::/48, local-use NAT64
  }
  // 2002::/16, 6to4: the embedded IPv4 address is the tunnel's other end.
  if (b(0) === 0x20 && b(1) === 0x02) return classifyV4(v4At(bytes, 2));
  if (b(0) === 0xfd && b(1) === 0x00 && b(2) === 0x0e && b(3) === 0xc2) {
    // fd00:ec2::254, AWS's IPv6 metadata endpoint
    if (bytes.subarray(4, 14).every((x) => x === 0) && b(14) === 0x02 && b(15) === 0x54) {
      return "metadata";
    }
  }
  if ((b(0) & 0xfe) === 0xfc) return "unique-local"; // fc00::/7
  if (b(0) === 0xfe && (b(1) & 0xc0) === 0x80) return "link-local"; // fe80::/10
  if (b(0) === 0xfe && (b(1) & 0xc0) === 0xc0) return "private"; // fec0::/10, old site-local
  if (b(0) === 0xff) return "multicast";
  // 2001::/23 holds Teredo (which tunnels to an embedded IPv4 address), ORCHID and the like;
  // 2001:db8::/32 is documentation.
  if (b(0) === 0x20 && b(1) === 0x01 && b(2) < 0x02) return "reserved";
  if (b(0) === 0x20 && b(1) === 0x01 && b(2) === 0x0d && b(3) === 0xb8) return "reserved";
  if ((b(0) & 0xe0) !== 0x20) return "reserved"; // outside 2000::/3, global unicast
  return "public";
}

/**
 * Classifies a literal IPv4 or IPv6 address (any spelling {@link parseIPv4} and
 * {@link parseIPv6} accept); anything else, a host name included, is `invalid`.
 */
export function classifyAddress(address: string): AddressKind {
  const ipv4 = parseIPv4(address);
  if (ipv4 !== null) return classifyV4(ipv4);
  const ipv6 = parseIPv6(address);
  if (ipv6 !== null) return classifyV6(ipv6);
  return "invalid";
}

/** Whether `host` (a URL's hostname, brackets allowed) is an IP address rather than a name. */
export function isIpLiteral(host: string): boolean {
  return parseIPv4(host) !== null || parseIPv6(host) !== null;
}

/**
 * Whether the proxy may connect to `address`. Only public addresses, unless `allowPrivate`;
 * cloud metadata endpoints and unparsable addresses never.
 */
export function isAllowedAddress(address: string, allowPrivate: boolean): boolean {
  const kind = classifyAddress(address);
  if (kind === "public") return true;
  if (kind === "metadata" || kind === "invalid") return false;
  return allowPrivate;
}
