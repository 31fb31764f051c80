#!/usr/bin/env bash
# Bounded fuzzing of every parser (README "Fuzzing"): builds the cargo-fuzz targets of fuzz/
# (stable toolchain: RUSTC_BOOTSTRAP=1, no sanitizer: `-s none`; debug assertions and overflow
# checks on), writes the seed corpora from fixtures/ (fuzz/seeds), then runs each target for
# JETDIR_FUZZ_SECONDS seconds (default 4: 15 targets in about a minute), one job.
#
#   scripts/fuzz.sh                       # the short CI run (scripts/test.sh calls it)
#   JETDIR_FUZZ_SECONDS=180 scripts/fuzz.sh              # a longer run
#   JETDIR_FUZZ_TARGETS="s2_frame tar_walk" scripts/fuzz.sh
#
# New corpus entries go to fuzz/corpus/<target>/ (gitignored; kept between runs), crashes to
# fuzz/artifacts/<target>/. Exits 1 if any target crashed, timed out or ran out of memory.
# Without cargo-fuzz (scripts/install-deps.sh installs it) it says so and exits 0, except under
# CI=true, where a missing cargo-fuzz fails.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO/fuzz"
SECONDS_PER="${JETDIR_FUZZ_SECONDS:-4}"
TARGETS="${JETDIR_FUZZ_TARGETS:-block_plain block_cmp s2_block s2_frame index_db legacy consumer_state meta aux_state tar_walk natsarc backup_json manifest verify_store verify_archive raft schedule}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
        echo "fuzz: cargo-fuzz is not installed (scripts/install-deps.sh installs it)" >&2
        exit 1
    fi
    echo "fuzz: NOT RUN: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
    exit 0
fi

export RUSTC_BOOTSTRAP=1
echo "fuzz: building the targets ($(cargo fuzz --version))"
cargo fuzz build -s none || { echo "fuzz: build failed" >&2; exit 1; }
host="$(rustc -vV | sed -n 's/^host: //p')"
bin="$REPO/fuzz/target/$host/release"

work="$(mktemp -d "${TMPDIR:-/tmp}/jetdir-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
echo "fuzz: writing seed corpora from fixtures/"
cargo run -q -p jetdir-fuzz-seeds -- "$REPO/fixtures" "$work/seeds" >/dev/null ||
    { echo "fuzz: seed generation failed" >&2; exit 1; }

# The verify targets write their input as files under TMPDIR (removed on exit); rayon would
# otherwise start a thread per core for every input.
export TMPDIR="$work" RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-1}"
failed=()
for t in $TARGETS; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$work/$t.log"
    "$bin/$t" "corpus/$t" "$work/seeds/$t" -max_total_time="$SECONDS_PER" -timeout=10 \
        -rss_limit_mb=1024 -max_len=262144 -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1)"
    corpus="$(ls "corpus/$t" | wc -l)"
    if [ $rc -eq 0 ]; then
        echo "fuzz: $t: ok, ${runs:-?} runs in ${SECONDS_PER}s, ${cov:-cov: ?}, corpus $corpus"
    else
        echo "fuzz: $t: FAILED (exit $rc); input kept in fuzz/artifacts/$t/"
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY|deadly signal|out-of-memory|timeout' "$log" | head -5
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}"
    exit 1
fi
echo "fuzz: all targets ran without a crash"
