// Copies the dashboard's browser dependencies out of node_modules into the
// analytics service's static folder. No bundling: the files are served as-is.
//
//   npm ci --prefix services/analytics/frontend && npm run --prefix services/analytics/frontend copy
//
// The destination (analytics/entrypoints/static/vendor/) is generated and gitignored;
// the pages still work without it (every chart has a table beside it).
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dest = join(here, "..", "analytics", "entrypoints", "static", "vendor");

const files = [
  // [source inside node_modules, name in vendor/]
  ["chart.js/dist/chart.umd.js", "chart.umd.js"],
  ["chart.js/LICENSE.md", "chart.js.LICENSE.md"],
];

mkdirSync(dest, { recursive: true });
let failed = false;
for (const [source, name] of files) {
  const from = join(here, "node_modules", source);
  if (!existsSync(from)) {
    console.error(`missing ${from}: run "npm ci" in services/analytics/frontend first`);
    failed = true;
    continue;
  }
  copyFileSync(from, join(dest, name));
  console.log(`copied ${source} -> analytics/entrypoints/static/vendor/${name}`);
}
process.exit(failed ? 1 : 0);
