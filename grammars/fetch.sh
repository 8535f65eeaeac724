#!/bin/sh
# Fetches the pinned tree-sitter runtime and grammar packages into
# grammars/node_modules (npm ci --ignore-scripts) when they are missing or
# older than package-lock.json.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
stamp=node_modules/.crucible-lock
runtime=node_modules/tree-sitter/vendor/tree-sitter/lib/src/lib.c
want=$(cksum < package-lock.json)
fresh=1
for pkg in tree-sitter-python tree-sitter-javascript tree-sitter-bash; do
  [ -f "node_modules/$pkg/src/parser.c" ] || fresh=0
done
[ -f "$runtime" ] || fresh=0
if [ "$fresh" = 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "grammars/fetch.sh: npm is needed to fetch the tree-sitter runtime and grammars (apt-get install npm)" >&2
  exit 1
fi
# --ignore-scripts: we only want the C sources, never the packages' native node builds.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
if [ ! -f "$runtime" ]; then
  echo "grammars/fetch.sh: $runtime is missing: the pinned 'tree-sitter' package no longer ships the C library's sources" >&2
  exit 1
fi
printf '%s\n' "$want" > "$stamp"
