#!/usr/bin/env bash
# Installs what tests/vscode needs (Node 24, code-server, playwright-core, Debian chromium and
# build deps) and prints the runtime's location as shell exports. Safe to run again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/runtime.sh"
ensure_code_server
printf 'export NODE24=%q\nexport CODE_SERVER_ENTRY=%q\nexport PLAYWRIGHT_CORE=%q\nexport CHROMIUM=%q\n' \
  "$NODE24" "$CODE_SERVER_ENTRY" "$PLAYWRIGHT_CORE" "$CHROMIUM"
