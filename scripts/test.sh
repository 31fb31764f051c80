#!/usr/bin/env bash
# The one command to check jetdir: installs the real NATS servers + nats-py
# (scripts/install-deps.sh), then runs rustfmt, clippy and every test,
# including the end-to-end tests against nats-server 2.15.1 and 2.9.10, a short
# run of every fuzz target (scripts/fuzz.sh), and the sampled differential matrix
# (scripts/matrix.sh --sample) and the benchmark's smoke run (bench/run.py --smoke).
# Runs every step even if one fails; exits non-zero if any failed.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/install-deps.sh || { echo "test.sh: install-deps.sh failed" >&2; exit 1; }

export NATS_SERVER_215="${NATS_SERVER_215:-$REPO/.venv/bin/nats-server}"
export NATS_SERVER_29="${NATS_SERVER_29:-/usr/sbin/nats-server}"
export PATH="$REPO/.venv/bin:$PATH"

failed=()
step() {
    local name="$1"; shift
    echo "== $name: $*"
    local t0=$SECONDS
    if "$@"; then
        echo "== $name: ok ($((SECONDS - t0))s)"
    else
        echo "== $name: FAILED ($((SECONDS - t0))s)"
        failed+=("$name")
    fi
}

step fmt cargo fmt --all -- --check
step clippy cargo clippy --all-targets -- -D warnings
# the test profile: optimized, with debug assertions and overflow checks (Cargo.toml, `ci`)
step test cargo test --profile ci --all-targets
# Every fuzz target (fuzz/, cargo-fuzz) for 4 seconds each, about a minute plus the build of the
# instrumented targets: scripts/fuzz.sh; JETDIR_SKIP_FUZZ=1 skips it.
if [ "${JETDIR_SKIP_FUZZ:-0}" != 1 ]; then
    step fuzz bash scripts/fuzz.sh
fi
# The sampled differential matrix (tests/support/matrix.py, about 70 s): jetdir against
# nats-server 2.10.26, 2.12.8 and 2.15.1 on damaged and killed stores; fails when a known
# disagreement (tests/matrix-sample-baseline.json) changes. JETDIR_SKIP_MATRIX=1 skips it.
# Then the same on encrypted stores (`--cipher chacha`, stream PLAIN only, about 30 s): a
# block's key file missing or damaged, meta.key, a consumer's files, a damaged record.
if [ "${JETDIR_SKIP_MATRIX:-0}" != 1 ]; then
    step matrix-sample "$REPO/.venv/bin/python" tests/support/matrix.py --sample \
        --jetdir "$REPO/target/ci/jetdir" --baseline tests/matrix-sample-baseline.json
    step matrix-sample-encrypted "$REPO/.venv/bin/python" tests/support/matrix.py --sample \
        --cipher chacha --workloads PLAIN \
        --failures clean,flip_payload,idx_damaged,key_missing_mid,key_flip_mid,key_flip_first,key_missing_last,meta_key_flip,odat_flip,consumer_key_flip,zero_last_tail \
        --out "$REPO/matrix-out/sample-encrypted" \
        --results "$REPO/matrix-out/sample-encrypted/results.md" \
        --jetdir "$REPO/target/ci/jetdir" --baseline tests/matrix-sample-encrypted-baseline.json
fi

# The benchmark's smoke run (bench/run.py --smoke, about 11 s plus the first `cargo build
# --profile profiling`): tiny data made by the real server, every command timed once per repeat
# against its baseline; fails only when a ratio collapses (not a timing test).
# JETDIR_SKIP_BENCH=1 skips it.
if [ "${JETDIR_SKIP_BENCH:-0}" != 1 ]; then
    step bench-smoke "$REPO/.venv/bin/python" bench/run.py --smoke
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "test.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "test.sh: all steps passed"
