// Copies the kiosk page's browser dependencies out of node_modules into the
// checkin service's static folder. No bundling: the files are served as-is.
//
//   npm ci --prefix services/checkin/frontend && npm run --prefix services/checkin/frontend vendor
//
// (or `make frontend`). The destination (checkin/entrypoints/static/kiosk/vendor/)
// is generated and gitignored.
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dest = join(here, "..", "checkin", "entrypoints", "static", "kiosk", "vendor");

const files = [
  // [source inside node_modules, name in vendor/]
  ["jsqr/dist/jsQR.js", "jsQR.js"],
  ["jsqr/LICENSE", "jsQR.LICENSE.txt"],
];

mkdirSync(dest, { recursive: true });
let failed = false;
for (const [source, name] of files) {
  const from = join(here, "node_modules", source);
  if (!existsSync(from)) {
    console.error(`missing ${from}: run "npm ci" in services/checkin/frontend first`);
    failed = true;
    continue;
  }
  copyFileSync(from, join(dest, name));
  console.log(`copied ${source} -> checkin/entrypoints/static/kiosk/vendor/${name}`);
}
process.exit(failed ? 1 : 0);
