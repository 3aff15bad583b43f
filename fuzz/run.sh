#!/bin/sh
# Runs every fuzz target for a short time (default 60 s each), one after the other, from
# the seed corpus in fuzz/corpus/<target>/. Needs nightly and cargo-fuzz
# (`cargo install cargo-fuzz --locked`). A crash stops the run and leaves its input in
# fuzz/artifacts/<target>/; `cargo +nightly fuzz run <target> <that file>` replays it.
#
#   fuzz/run.sh        # 60 s per target
#   fuzz/run.sh 600    # the ten-minute runs the README reports
set -eu
seconds=${1:-60}
cd "$(dirname "$0")"
for target in dns_request zone_file config rewrite_stream; do
    echo "== $target, $seconds s"
    # New inputs go to a scratch directory: the committed corpus stays a small seed set.
    scratch=$(mktemp -d)
    # A target's dictionary of tokens, when it has one (fuzz/<target>.dict).
    dict=""
    [ -f "$target.dict" ] && dict="-dict=$target.dict"
    cargo +nightly fuzz run "$target" "$scratch" "corpus/$target" -- \
        -max_total_time="$seconds" -jobs=1 -print_final_stats=1 $dict
    rm -rf "$scratch"
done
