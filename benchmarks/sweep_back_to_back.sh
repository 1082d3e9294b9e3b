#!/bin/bash
# Sweep wall times of two commits back to back, as issue 22 asks: a fresh clone of each (its own
# `make setup`, not timed), each with its own XLA compilation cache (empty at the start), the
# targets run alternately (OLD's capacity, NEW's capacity, OLD's compare, ...). Prints one line
# per run; then compare the clones' summaries, e.g. `cmp OUT/old/reports/compare.json
# OUT/new/...`. Any make target times the same way: `... OUT test test` times the suite twice
# per side, the first time with XLA's cache empty (as on a new machine), the second warm.
#
#   benchmarks/sweep_back_to_back.sh OLD_COMMIT NEW_COMMIT OUT_DIR [TARGET ...]
#   (default targets: capacity compare)
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 OLD_COMMIT NEW_COMMIT OUT_DIR [TARGET ...]" >&2; exit 2; }
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
old=$1 new=$2 out=$3
shift 3

targets=("$@"); [ $# -gt 0 ] || targets=(capacity compare)
mkdir -p "$out"
for side in old new; do
  commit=$old; [ $side = new ] && commit=$new
  git clone -q "$repo" "$out/$side"
  git -C "$out/$side" checkout -q "$commit"
  make -C "$out/$side" setup > "$out/$side-setup.log" 2>&1
done
for target in "${targets[@]}"; do
  for side in old new; do
    start=$(date +%s.%N)
    status=ok
    RNNLAB_XLA_CACHE="$out/xla-$side" make -C "$out/$side" "$target" > "$out/$side-$target.log" 2>&1 \
      || status=FAILED
    end=$(date +%s.%N)
    echo "$side ($(git -C "$out/$side" rev-parse --short HEAD)) make $target: $(python3 -c "print(round($end - $start, 1))") s, $status"
  done
done
