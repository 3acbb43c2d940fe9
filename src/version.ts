/** The proxy's version, from package.json (embedded by `bun build --compile`). */
import pkg from "../package.json" with { type: "json" };

/** e.g. "0.1.0". */
export const VERSION: string = pkg.version;
