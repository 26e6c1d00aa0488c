#!/usr/bin/env python3
"""Derive SIP expectations for edgetrace's tests from tshark (run once, commit the output).

    scripts/tshark-sip.py ../shared/corpus/public/dev/sip*

For each capture it runs (TShark 4.0):

    tshark -r CAPTURE -o tcp.desegment_tcp_streams:TRUE -d tcp.port==6060,sip \
        -T json --no-duplicate-keys -J "frame sip"

and writes tests/expected/sip/NAME.json: one entry per SIP message tshark
decodes, in tshark's order, with the frame tshark puts it in (for a message
reassembled from several TCP segments, the last one), the request method or
status code, Call-ID, CSeq, and the Via / Record-Route / Route entries in
order.  tshark gives header *lines*; a line may hold several comma-separated
entries, which this script splits outside <...> and quotes (RFC 3261 §7.3.1)
so the list compares entry by entry.  Port 6060 is decoded as SIP because one
corpus capture runs SIP there and tshark has no heuristic for it.
"""
import json
import os
import subprocess
import sys


def as_list(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def split_entries(line):
    out, cur, depth, quoted = [], "", 0, False
    i = 0
    while i < len(line):
        c = line[i]
        if quoted:
            cur += c
            if c == "\\" and i + 1 < len(line):
                cur += line[i + 1]
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
            cur += c
        elif c == "<":
            depth += 1
            cur += c
        elif c == ">":
            depth = max(depth - 1, 0)
            cur += c
        elif c == "," and depth == 0:
            if cur.strip():
                out.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    if cur.strip():
        out.append(cur.strip())
    return out


def entries(hdrs, key):
    out = []
    for line in as_list(hdrs.get(key)):
        out.extend(split_entries(line))
    return out


def message(sip):
    hdrs = sip.get("sip.msg_hdr_tree") or {}
    m = {
        "call_id": hdrs.get("sip.Call-ID"),
        "cseq": hdrs.get("sip.CSeq"),
        "via": entries(hdrs, "sip.Via"),
        "record_route": entries(hdrs, "sip.Record-Route"),
        "route": entries(hdrs, "sip.Route"),
    }
    if "sip.Request-Line" in sip:
        m["method"] = sip["sip.Request-Line_tree"]["sip.Method"]
    elif "sip.Status-Line" in sip:
        m["status"] = int(sip["sip.Status-Line_tree"]["sip.Status-Code"])
    else:
        return None
    return m


def run(path):
    cmd = ["tshark", "-r", path, "-o", "tcp.desegment_tcp_streams:TRUE", "-d", "tcp.port==6060,sip",
           "-T", "json", "--no-duplicate-keys", "-J", "frame sip"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    try:
        pkts = json.loads(p.stdout) if p.stdout.strip() else []
    except json.JSONDecodeError:
        pkts = []
    out = []
    for pkt in pkts:
        layers = pkt["_source"]["layers"]
        frame = int(layers["frame"]["frame.number"])
        for sip in as_list(layers.get("sip")):
            m = message(sip) if isinstance(sip, dict) else None
            if m:
                m["frame"] = frame
                out.append(m)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = os.path.join(here, "..", "tests", "expected", "sip")
    os.makedirs(outdir, exist_ok=True)
    version = subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    for path in sys.argv[1:]:
        msgs = run(path)
        name = os.path.basename(path)
        with open(os.path.join(outdir, name + ".json"), "w") as fh:
            json.dump({"capture": name, "tshark": version, "messages": msgs}, fh, indent=1, sort_keys=True,
                      ensure_ascii=False)
            fh.write("\n")
        print(f"{name}: {len(msgs)} SIP messages")


if __name__ == "__main__":
    main()
