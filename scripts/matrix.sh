#!/usr/bin/env bash
# Differential matrix: jetdir's prediction against the real server's load,
# for every installed release (see tests/support/matrix.py).
#
#   bash scripts/matrix.sh --sample   # CI-sized: 5 releases x 9 failures x 7
#                                     # streams (~40 s after the installs); exits 1
#                                     # when a disagreement appears, changes or goes
#                                     # away against tests/matrix-sample-baseline.json
#   bash scripts/matrix.sh --full     # every release x every failure x every
#                                     # workload (~7 min); writes tests/matrix-results.md
#   bash scripts/matrix.sh --full --releases 2.12.8 --failures clean,flip_len
#
# Installs the servers (scripts/install-deps.sh), builds jetdir (release), runs
# one server at a time on 127.0.0.1. Cases, stores and truths go to
# matrix-out/{sample,full}/ (gitignored); the sample table to
# matrix-out/sample/results-sample.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

bash scripts/install-deps.sh
cargo build --release --quiet
mode=(--sample)
case "${1:-}" in
    --sample|--full) mode=("$1"); shift ;;
esac
if [ "${mode[0]}" = --sample ] && [ $# -eq 0 ]; then
    set -- --baseline "$REPO/tests/matrix-sample-baseline.json"
fi
exec "$REPO/.venv/bin/python" tests/support/matrix.py "${mode[@]}" "$@"
