#!/usr/bin/env bash
# The browser end-to-end tests' npm dependency: playwright-core, pinned by
# tests/e2e/package-lock.json, installed into tests/e2e/node_modules (gitignored). The browser is
# Debian's /usr/bin/chromium (scripts/bootstrap.sh installs it); playwright never downloads one.
#   bash scripts/lib/e2e.sh ensure    install only when missing or not the locked version
#   bash scripts/lib/e2e.sh install   install again (npm ci)
set -euo pipefail
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tests/e2e" && pwd)"

e2e_locked_version() {
  node -e 'const l=require(process.argv[1]);process.stdout.write(l.packages["node_modules/playwright-core"].version)' \
    "$E2E_DIR/package-lock.json"
}

e2e_installed_version() {
  node -e 'try{process.stdout.write(require(process.argv[1]).version)}catch{}' \
    "$E2E_DIR/node_modules/playwright-core/package.json"
}

e2e_install() {
  command -v npm >/dev/null || { echo "e2e: npm is missing; run scripts/bootstrap.sh as root" >&2; return 1; }
  # No browser download: the tests use Debian's chromium (DS_CHROMIUM, default /usr/bin/chromium).
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$E2E_DIR" --no-audit --no-fund --loglevel=error >/dev/null
  echo "e2e: playwright-core $(e2e_installed_version) installed in $E2E_DIR/node_modules"
}

e2e_ensure() {
  command -v node >/dev/null || { echo "e2e: node is missing; run scripts/bootstrap.sh as root" >&2; return 1; }
  [ -x "${DS_CHROMIUM:-/usr/bin/chromium}" ] ||
    { echo "e2e: ${DS_CHROMIUM:-/usr/bin/chromium} is missing; run scripts/bootstrap.sh as root (apt-get install chromium)" >&2; return 1; }
  if [ "$(e2e_installed_version)" != "$(e2e_locked_version)" ]; then e2e_install; fi
}

case "${1:-ensure}" in
  ensure) e2e_ensure ;;
  install) e2e_install ;;
  *) echo "usage: $0 ensure|install" >&2; exit 64 ;;
esac
