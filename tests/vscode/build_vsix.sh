#!/usr/bin/env bash
# Builds the VS Code extension: npm ci, strict type check, esbuild bundle, the innerloop wheel
# shipped inside it, and `vsce package`. Prints the VSIX path as the last line of stdout.
# PYTHON (default: the repo's .venv, else python3) builds the wheel.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/runtime.sh"
cd "$REPO_ROOT"
ensure_node24
export PATH="$NODE24_HOME/bin:$PATH"
PYTHON="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"

log() { echo "[build_vsix] $*" >&2; }

version="$(node -p 'require("./package.json").version')"
py_version="$("$PYTHON" -c 'import re,sys; print(re.search(r"__version__ = \"(.+)\"", open("server/innerloop/__init__.py").read()).group(1))')"
if [ "$version" != "$py_version" ]; then
  log "package.json version $version differs from innerloop.__version__ $py_version: bump both"
  exit 1
fi

# The VSIX is a function of its inputs: one built from the same bytes (this checkout's, or a
# clone's with the same content) is reused from the cache, so scripts/setup and the vsix fixture
# build once per change, not once each. Untracked files count; ignored ones (out/) do not.
inputs=(package.json package-lock.json tsconfig.json .vscodeignore pyproject.toml README.md
  extension server/innerloop tests/vscode/build_vsix.sh tests/vscode/runtime.sh)
vsix="dist/innerloop-$version.vsix"
cached=""
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  input_hash="$( { echo "$NODE24"; git ls-files -co --exclude-standard -z -- "${inputs[@]}" \
    | sort -z | xargs -0 -r sha256sum 2>/dev/null || true; } | sha256sum | cut -c1-16)"
  cached="$INNERLOOP_CACHE/vsix/$input_hash/innerloop-$version.vsix"
fi
if [ -n "$cached" ] && [ -f "$cached" ]; then
  log "unchanged since the build cached as $cached"
  mkdir -p dist
  cp "$cached" "$vsix"
  echo "$REPO_ROOT/$vsix"
  exit 0
fi

# npm ci only when the lockfile changed since the last install.
lock_hash="$(sha256sum package-lock.json | cut -c1-16)"
if [ "$(cat node_modules/.innerloop-lock 2>/dev/null)" != "$lock_hash" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --prefer-offline >&2
  echo "$lock_hash" > node_modules/.innerloop-lock
fi

log "type check (tsc --noEmit, strict)"
node_modules/.bin/tsc -p . --noEmit >&2
log "bundle (esbuild)"
rm -rf extension/out
node extension/esbuild.mjs --production >&2

log "wheel"
isolation=()
"$PYTHON" -c 'import hatchling' 2>/dev/null && isolation=(--no-build-isolation)
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps "${isolation[@]}" \
  -w extension/out/python . >&2

log "vsce package"
mkdir -p dist
node_modules/.bin/vsce package --no-dependencies --skip-license --allow-missing-repository \
  --readme-path extension/README.md --out "$vsix" >&2
if [ -n "$cached" ]; then
  mkdir -p "$(dirname "$cached")"
  cp "$vsix" "$cached.$$" && mv "$cached.$$" "$cached"
fi
echo "$REPO_ROOT/$vsix"
