#!/usr/bin/env bash
# Runs Redocly CLI (the OpenAPI linter) at the version pinned here,
# installing it from npm once into a cache dir so later runs need no
# network. TestOpenAPILint (server/api) and with-test-services.sh use it.
#
#   scripts/redocly.sh lint server/api/openapi.json   run it
#   scripts/redocly.sh --install                      install it if missing
#   scripts/redocly.sh --path                         print its path if installed, else exit 1
set -euo pipefail

version=2.77.0
cache="${CORDON_REDOCLY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cordon/redocly}/$version"
bin="$cache/node_modules/.bin/redocly"
# No telemetry and no update check: the lint must not depend on the network.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true

case "${1:-}" in
--path)
  [ -x "$bin" ] || exit 1
  echo "$bin"
  exit 0
  ;;
esac
if [ ! -x "$bin" ]; then
  command -v npm >/dev/null || { echo "redocly.sh: npm not found (Node.js 20.19+ with npm is needed)" >&2; exit 127; }
  echo "redocly.sh: installing @redocly/cli@$version into $cache" >&2
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-audit --no-fund --loglevel=error "@redocly/cli@$version" >&2
fi
[ "${1:-}" = "--install" ] && exit 0
exec "$bin" "$@"
