#!/usr/bin/env bash
# Throughput and peak memory of the whole binary on a large generated capture,
# next to `cat FILE > /dev/null` and (when installed) tshark on the same file.
#
#   scripts/bench.sh [SIZE] [COMMAND...]      e.g.  scripts/bench.sh 1G flows
#
# The capture is made by examples/gencap/ from samples/ into bench-data/
# (git-ignored) and reused: delete bench-data/ after gencap changes (session 11
# made every replica a call of its own).  Each timing is the best of RUNS runs (default 3;
# tshark's of TSHARK_RUNS, default 3: a minute each) with a warm
# page cache; peak RSS comes from GNU time when present, else from getrusage.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1G}
shift || true
CMD=("${@:-flows}")
FILE=bench-data/mixed-$SIZE.pcap
cargo build --release --quiet --bin edgetrace --example gencap
mkdir -p bench-data
[ -f "$FILE" ] || ./target/release/examples/gencap "$SIZE" "$FILE"
BYTES=$(stat -c %s "$FILE")
FRAMES=$(./target/release/edgetrace flows --json "$FILE" | python3 -c 'import json,sys; print(json.load(sys.stdin)["capture"]["frames"])')

measure() { # prints "seconds peak_rss_kib" for the best of $N runs
  N=${N:-${RUNS:-3}} python3 - "$@" <<'PY'
import os, resource, subprocess, sys, time
best = None
for _ in range(int(os.environ["N"])):
    t = time.perf_counter()
    p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = __import__("os").wait4(p.pid, 0)
    dt = time.perf_counter() - t
    if best is None or dt < best[0]:
        best = (dt, ru.ru_maxrss)
print(f"{best[0]:.3f} {best[1]}")
PY
}

row() { # name seconds rss
  python3 -c "
import sys
name, s, rss, b, f = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f'| {name:<34} | {s:8.3f} | {b/s/1e6:9.0f} | {f/s/1e6:8.2f} | {rss/1024:8.1f} |')
" "$1" "$2" "$3" "$BYTES" "$FRAMES"
}

cat "$FILE" > /dev/null  # warm the page cache
echo "capture: $FILE, $BYTES bytes, $FRAMES frames, $(nproc) cores"
echo "| command                            |  seconds |      MB/s | Mpkt/s   | peak MiB |"
echo "|------------------------------------|---------:|----------:|---------:|---------:|"
read -r s rss < <(measure cat "$FILE"); row "cat FILE > /dev/null" "$s" "$rss"
read -r s rss < <(measure ./target/release/edgetrace "${CMD[@]}" "$FILE"); row "edgetrace ${CMD[*]}" "$s" "$rss"
read -r s rss < <(measure ./target/release/edgetrace "${CMD[@]}" --json "$FILE"); row "edgetrace ${CMD[*]} --json" "$s" "$rss"
if command -v tshark > /dev/null && [ "${SKIP_TSHARK:-}" = "" ]; then
  read -r s rss < <(N=${TSHARK_RUNS:-3} measure tshark -r "$FILE" -Y stun -T fields -e frame.number); row "tshark -Y stun -T fields" "$s" "$rss"
fi
