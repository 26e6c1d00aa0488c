#!/usr/bin/env python3
"""Derive flow expectations for edgetrace's differential test from tshark.

Run once (or whenever a capture is added) and commit the output; tshark is NOT
needed when the tests run.  Usage:

    scripts/tshark-flows.py ../shared/captures/*.pcap ../shared/corpus/public/dev/*.pcap*

For each capture it runs (TShark 4.0, default preferences, single pass):

    tshark -r CAPTURE -T fields -E occurrence=a -E aggregator=, -E separator=/t \
        -e frame.number -e frame.len -e tcp.stream -e udp.stream \
        -e tcp.srcport -e tcp.dstport -e udp.srcport -e udp.dstport \
        -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e icmp.type -e icmpv6.type

and writes tests/expected/flows/NAME.json with one entry per tcp.stream /
udp.stream: first sender and receiver (the endpoint of the first frame), first
and last frame, frames and bytes (sum of frame.len) per direction.  Frames whose
transport header is the one quoted inside an ICMP/ICMPv6 error are left out:
tshark gives them the stream of the quoted packet, edgetrace counts them apart.
"""
import json
import os
import subprocess
import sys

FIELDS = ["frame.number", "frame.len", "tcp.stream", "udp.stream",
          "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
          "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "icmp.type", "icmpv6.type"]


def last(v):
    return v.split(",")[-1] if v else ""


def endpoint(addr, port):
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def run(path):
    cmd = ["tshark", "-r", path, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
           "-E", "separator=/t"]
    for f in FIELDS:
        cmd += ["-e", f]
    p = subprocess.run(cmd, capture_output=True, text=True)
    flows = {}
    frames = 0
    for line in p.stdout.splitlines():
        cols = line.split("\t")
        if len(cols) < len(FIELDS):
            continue
        r = dict(zip(FIELDS, cols))
        frames += 1
        if r["icmp.type"] or r["icmpv6.type"]:
            # transport headers quoted inside ICMP errors: not part of the flow
            continue
        for proto in ("tcp", "udp"):
            stream = last(r[f"{proto}.stream"])
            if not stream:
                continue
            src = last(r["ipv6.src"]) or last(r["ip.src"])
            dst = last(r["ipv6.dst"]) or last(r["ip.dst"])
            # innermost IP: when both v4 and v6 are present (tunnels), prefer the
            # one that appears last in the frame; tshark cannot tell us, so
            # take IPv6 only when there is no IPv4 after it (good enough here).
            if r["ip.src"] and r["ipv6.src"]:
                src, dst = last(r["ip.src"]), last(r["ip.dst"])
            s = endpoint(src, last(r[f"{proto}.srcport"]))
            d = endpoint(dst, last(r[f"{proto}.dstport"]))
            key = (proto, int(stream))
            num, ln = int(r["frame.number"]), int(r["frame.len"])
            f = flows.get(key)
            if f is None:
                f = flows[key] = {"transport": proto, "stream": int(stream), "a": s, "b": d,
                                  "first_frame": num, "last_frame": num,
                                  "frames_a_to_b": 0, "frames_b_to_a": 0,
                                  "bytes_a_to_b": 0, "bytes_b_to_a": 0}
            f["last_frame"] = num
            if s == f["a"]:
                f["frames_a_to_b"] += 1
                f["bytes_a_to_b"] += ln
            else:
                f["frames_b_to_a"] += 1
                f["bytes_b_to_a"] += ln
    out = {
        "capture": os.path.basename(path),
        "tshark": subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout.splitlines()[0],
        "frames": frames,
        "tshark_error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else None,
        "flows": [flows[k] for k in sorted(flows)],
    }
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = os.path.join(here, "..", "tests", "expected", "flows")
    os.makedirs(outdir, exist_ok=True)
    for path in sys.argv[1:]:
        out = run(path)
        name = os.path.basename(path)
        with open(os.path.join(outdir, name + ".json"), "w") as fh:
            json.dump(out, fh, indent=1, sort_keys=True)
            fh.write("\n")
        print(f"{name}: {out['frames']} frames, {len(out['flows'])} flows")


if __name__ == "__main__":
    main()
