#!/usr/bin/env bash
# How time and peak memory grow with the capture: one command on generated
# captures of several sizes (default 200M 1G 2G), best of 3 runs each, warm
# page cache.  Prints seconds, MB/s, Mpkt/s, peak RSS, and both relative to
# the smallest size (time should grow like the size; memory should not).
#
#   scripts/bench-sizes.sh [COMMAND...]            e.g.  scripts/bench-sizes.sh report --json
#   SIZES="200M 2G" scripts/bench-sizes.sh flows
set -euo pipefail
cd "$(dirname "$0")/.."
CMD=("${@:-report}")
SIZES=${SIZES:-"200M 1G 2G"}
cargo build --release --quiet --bin edgetrace --example gencap
mkdir -p bench-data
for s in $SIZES; do
  [ -f "bench-data/mixed-$s.pcap" ] || ./target/release/examples/gencap "$s" "bench-data/mixed-$s.pcap"
done
python3 - "${CMD[@]}" <<PY
import json, os, subprocess, sys, time
cmd = sys.argv[1:]
rows = []
for size in "$SIZES".split():
    path = f"bench-data/mixed-{size}.pcap"
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL)  # warm the page cache
    nbytes = os.path.getsize(path)
    # the frame count comes from a separate process: a large JSON held here
    # would be counted in the children's ru_maxrss (vfork), so the peak RSS
    # is the one edgetrace reports itself (EDGETRACE_PEAK_RSS, VmHWM)
    frames = int(subprocess.run(
        ["sh", "-c", f"./target/release/edgetrace report --json {path} | "
         "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"capture\"][\"frames\"])'"],
        capture_output=True, text=True).stdout)
    best = None
    for _ in range(3):
        t = time.perf_counter()
        p = subprocess.run(["./target/release/edgetrace", *cmd, path], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "EDGETRACE_PEAK_RSS": "1"})
        dt = time.perf_counter() - t
        kib = next(int(l.split()[3]) for l in p.stderr.splitlines() if l.startswith("edgetrace: peak RSS"))
        if best is None or dt < best[0]:
            best = (dt, kib / 1024)
    rows.append((size, nbytes, frames, *best))
base = rows[0]
print(f"edgetrace {' '.join(cmd)}, {os.cpu_count()} cores")
print("| capture | frames | seconds | MB/s | Mpkt/s | peak MiB | s per GB vs first | RSS vs first |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for size, nbytes, frames, s, rss in rows:
    per_gb = (s / nbytes) / (base[3] / base[1])
    print(f"| {size} | {frames:,} | {s:.3f} | {nbytes / s / 1e6:.0f} | {frames / s / 1e6:.2f} "
          f"| {rss:.1f} | {per_gb:.2f}x | {rss / base[4]:.2f}x |")
PY
