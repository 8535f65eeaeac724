#!/bin/sh
# Installs the real VS Code workbench for tests/editors/vscode/workbench_test.js: code-server (VS Code
# 1.100.3 served to a browser; 4.100.3 is the last release on Node 20) and playwright-core, pinned by
# package-lock.json here and by code-server's own npm-shrinkwrap.json. Nothing is downloaded but npm
# packages: no install scripts run; their work is done here instead (Debian's ripgrep stands in for
# @vscode/ripgrep's GitHub download; native modules are built with node-gyp against /usr/include/node).
# The browser is Debian's chromium.
#
# The install lives outside the clone, in $CRUCIBLE_CI_CACHE (default ~/.cache/crucible-ci), under a name
# keyed by this script and the lockfile, so a second clone or run reuses it; tests/editors/workbench/
# node_modules becomes a symlink to it. Safe to run again. Exits 0 without installing, saying why, when
# something it needs is missing (the workbench test then skips with the same reason).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

why=""
command -v npm >/dev/null 2>&1 || why="npm not found"
command -v node >/dev/null 2>&1 && [ "$(node -p 'process.versions.node.split(".")[0]')" = 20 ] ||
  why="${why:+$why; }code-server 4.100.3 needs Node 20"
[ -f /usr/include/node/node_api.h ] || why="${why:+$why; }no node headers in /usr/include/node"
for t in chromium rg c++ make python3 krb5-config; do
  command -v "$t" >/dev/null 2>&1 || why="${why:+$why; }$t not found"
done
if [ -n "$why" ]; then
  echo "tests/editors/workbench/install.sh: $why (Debian packages: chromium ripgrep g++ make libkrb5-dev;" \
    "Node 20 with its headers); the VS Code workbench test will skip" >&2
  exit 0
fi

key=$( (cat "$here/package-lock.json" "$here/install.sh"; node --version) | sha256sum | cut -c1-16)
cache=${CRUCIBLE_CI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/crucible-ci}
dir=$cache/workbench-$key

if [ ! -f "$dir/complete" ]; then
  echo "tests/editors/workbench/install.sh: installing code-server into $dir" >&2
  start=$(date +%s)
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  cp "$here/package.json" "$here/package-lock.json" "$dir.tmp/"
  (cd "$dir.tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  vs=$dir.tmp/node_modules/code-server/lib/vscode
  # code-server's postinstall.sh, by hand: VS Code's packages, pinned by its npm-shrinkwrap.json (`npm
  # install` as postinstall.sh does it: `npm ci` refuses that shrinkwrap, which lacks one tslib)...
  (cd "$vs" && npm install --ignore-scripts --omit=dev --no-audit --no-fund --loglevel=error)
  (cd "$vs/extensions" && npm install --ignore-scripts --omit=dev --no-audit --no-fund --loglevel=error)
  # ...their native modules (the Windows-only ones and @parcel/watcher, which ships a prebuilt linux
  # package, excepted)...
  gyp=$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js
  [ -f "$gyp" ] || gyp=$(command -v node-gyp)
  for m in kerberos @vscode/deviceid @vscode/spdlog native-watchdog node-pty; do
    (cd "$vs/node_modules/$m" && node "$gyp" rebuild --nodedir=/usr -j 2 --loglevel=error >/dev/null)
  done
  a=$dir.tmp/node_modules/argon2
  (cd "$a" && node "$gyp" rebuild --nodedir=/usr -j 2 --loglevel=error --module_name=argon2 \
    --module_path="$a/lib/binding/napi-v3" --napi_build_version=3 >/dev/null)
  # ...ripgrep from Debian instead of a download, and the links postinstall.sh makes.
  mkdir -p "$vs/node_modules/@vscode/ripgrep/bin"
  ln -sf "$(command -v rg)" "$vs/node_modules/@vscode/ripgrep/bin/rg"
  ln -sfn node_modules "$vs/node_modules.asar"
  ln -sf code-linux.sh "$vs/bin/remote-cli/code-server"
  ln -sf browser-linux.sh "$vs/bin/helpers/browser.sh"
  # the install moves into place only when complete
  touch "$dir.tmp/complete"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  echo "tests/editors/workbench/install.sh: installed in $(($(date +%s) - start)) s" >&2
fi
ln -sfn "$dir/node_modules" "$here/node_modules"
