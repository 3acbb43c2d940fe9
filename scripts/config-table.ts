/**
 * Prints the README's configuration table (Markdown) from the settings table in src/config.ts,
 * so the two never drift: `npx tsx scripts/config-table.ts`. test/unit/readme.test.ts checks
 * that README.md contains exactly this table.
 */
import { configTable } from "../src/config.ts";

console.log(configTable());
