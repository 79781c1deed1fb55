// ESLint for the project's own browser JavaScript (`make lint-js`, run by `make test`).
// The pages load these files as they are (no bundler); vendored copies from npm
// (static/**/vendor/) and node_modules are not ours and are not linted.
import js from "@eslint/js";
import globals from "globals";

export default [
  {
    ignores: ["**/node_modules/**", "**/vendor/**", ".venv/**", "test-artifacts/**", "**/build/**", "**/dist/**"],
  },
  js.configs.recommended,
  {
    // ES modules in the browser: the organizer pages (static/js) and the kiosk (static/kiosk).
    files: ["services/*/*/entrypoints/static/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
    rules: {
      // `const { _private, ...rest } = obj` is how a field is left out of a copy.
      "no-unused-vars": ["error", { ignoreRestSiblings: true }],
    },
  },
  {
    // The kiosk's service worker is a classic worker script.
    files: ["services/checkin/checkin/entrypoints/static/kiosk/sw.js"],
    languageOptions: {
      sourceType: "script",
      globals: { ...globals.serviceworker },
    },
  },
  {
    // The analytics dashboard is a classic script (an IIFE), loaded after Chart.js.
    files: ["services/analytics/analytics/entrypoints/static/*.js"],
    languageOptions: {
      sourceType: "script",
      globals: { ...globals.browser },
    },
  },
  {
    // Node scripts: the npm packages' copy steps and this file.
    files: ["**/*.mjs"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.node },
    },
  },
];
