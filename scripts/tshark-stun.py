#!/usr/bin/env python3
"""Derive STUN expectations for edgetrace's tests from tshark (run once, commit the output).

    scripts/tshark-stun.py ../shared/captures/*.pcap ../shared/corpus/public/dev/*.pcap*

For each capture it runs (TShark 4.0):

    tshark -r CAPTURE --enable-heuristic stun_turn -o tcp.desegment_tcp_streams:TRUE \
        -T json --no-duplicate-keys -J "frame stun classicstun"

and writes tests/expected/stun/NAME.json: one entry per STUN message tshark
decodes (several per frame are possible: TCP segments with many messages,
STUN inside ChannelData), in tshark's order, with the frame tshark puts it in
(for messages reassembled from several TCP segments, the last one), the
message type, the transaction id, and every address attribute (type and
decoded "addr:port", un-XORed).  Captures where tshark decodes no STUN get an
empty list, so the test can also say where we find more than tshark.
"""
import json
import os
import subprocess
import sys


def as_list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def addr_of(att, prefix):
    port = att.get(prefix + ".att.port")
    ip = att.get(prefix + ".att.ipv4") or att.get(prefix + ".att.ipv6")
    if port is None or ip is None:
        return None
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def messages(layer, prefix):
    out = []
    for m in as_list(layer):
        if not isinstance(m, dict) or prefix + ".type" not in m:
            continue
        addrs = []
        attrs = m.get(prefix + ".attributes") or {}
        trees = as_list(attrs.get(prefix + ".attribute_tree"))
        if prefix == "classicstun":
            # classicstun nests attributes as {"Attribute: NAME": {...}} under classicstun.att
            trees = [v for v in (m.get("classicstun.att") or {}).values() if isinstance(v, dict)]
        for att in trees:
            a = addr_of(att, prefix)
            if a:
                addrs.append([att.get(prefix + ".att.type"), a])
        mid = m.get(prefix + ".id", "").replace(":", "")
        out.append({"type": m[prefix + ".type"], "txid": mid, "addresses": addrs,
                    "classic": prefix == "classicstun"})
    return out


def walk(obj, found):
    """Collects stun/classicstun layers wherever they sit (also nested in ChannelData)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("stun", "classicstun"):
                found.extend(messages(v, k))
            else:
                walk(v, found)
    elif isinstance(obj, list):
        for v in obj:
            walk(v, found)


def run(path):
    cmd = ["tshark", "-r", path, "--enable-heuristic", "stun_turn", "-o", "tcp.desegment_tcp_streams:TRUE",
           "-T", "json", "--no-duplicate-keys", "-J", "frame stun classicstun"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    try:
        pkts = json.loads(p.stdout) if p.stdout.strip() else []
    except json.JSONDecodeError:
        pkts = []
    out = []
    for pkt in pkts:
        layers = pkt["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"]) if "frame" in layers else None
        found = []
        walk(layers, found)
        for m in found:
            m["frame"] = frame
            out.append(m)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = os.path.join(here, "..", "tests", "expected", "stun")
    os.makedirs(outdir, exist_ok=True)
    version = subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    for path in sys.argv[1:]:
        msgs = run(path)
        name = os.path.basename(path)
        with open(os.path.join(outdir, name + ".json"), "w") as fh:
            json.dump({"capture": name, "tshark": version, "messages": msgs}, fh, indent=1, sort_keys=True)
            fh.write("\n")
        print(f"{name}: {len(msgs)} STUN messages")


if __name__ == "__main__":
    main()
