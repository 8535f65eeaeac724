#!/bin/sh
# Fetches the pinned tree-sitter grammar packages into grammars/node_modules
# (npm ci --ignore-scripts) when they are missing or older than package-lock.json.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
stamp=node_modules/.crucible-lock
want=$(cksum < package-lock.json)
fresh=1
for pkg in tree-sitter-python tree-sitter-javascript tree-sitter-bash; do
  [ -f "node_modules/$pkg/src/parser.c" ] || fresh=0
done
if [ "$fresh" = 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "grammars/fetch.sh: npm is needed to fetch the tree-sitter grammars (apt-get install npm)" >&2
  exit 1
fi
# --ignore-scripts: we only want the generated C sources, never the packages' native node builds.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2
printf '%s\n' "$want" > "$stamp"
