#!/bin/sh
# Installs the npm packages the editor tests need (pinned by the lockfiles, no install scripts run) and
# builds the VS Code extension. Safe to run again: installs only what is missing. Call it from CI setup.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)

if ! command -v npm >/dev/null 2>&1; then
  echo "tests/editors/setup.sh: npm not found (Debian packages: nodejs npm); the node editor tests will skip" >&2
  exit 0
fi
if [ ! -d "$root/tests/editors/node_modules" ]; then
  (cd "$root/tests/editors" && npm ci --ignore-scripts --no-audit --no-fund)
fi
# (again when the lockfile gained packages: vsce and esbuild package the extension)
if [ ! -d "$root/editors/vscode/node_modules/@vscode/vsce" ] || [ ! -d "$root/editors/vscode/node_modules/esbuild" ]; then
  (cd "$root/editors/vscode" && npm ci --ignore-scripts --no-audit --no-fund)
fi
(cd "$root/editors/vscode" && npx --no-install tsc -p . && npm run --silent bundle)
