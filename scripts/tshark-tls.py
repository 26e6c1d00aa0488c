#!/usr/bin/env python3
"""Derive TLS expectations for edgetrace's tests from tshark (run once, commit the output).

    scripts/tshark-tls.py ../shared/corpus/public/dev/*tls*  ../shared/captures/tls-*.pcap

For each capture it runs (TShark 4.0), with 8057 decoded as TLS:

    tshark -r CAPTURE -o tcp.desegment_tcp_streams:TRUE -d tcp.port==8057,tls -Y "tls.handshake || tls.alert_message"
        -T fields -E occurrence=a -E aggregator=| -e frame.number -e tcp.stream -e tls.handshake.type ...

and writes tests/expected/tls/NAME.json: one entry per frame carrying clear
handshake messages or alerts (the frame tshark shows a reassembled record in:
its last segment), with the handshake types in order (pcapng decryption
secrets are discarded first with editcap, so only what is in clear counts), the ClientHello's SNI
and number of cipher suites, the ServerHello's cipher suite and selected
version, the certificates' SAN dNSNames, and alert descriptions.
"""
import json
import os
import subprocess
import sys
import tempfile

FIELDS = ["frame.number", "tcp.stream", "tls.handshake.type", "tls.handshake.extensions_server_name",
          "tls.handshake.cipher_suites_length", "tls.handshake.ciphersuite",
          "tls.handshake.extensions.supported_version", "tls.handshake.certificate_length",
          "x509ce.dNSName", "tls.alert_message.desc"]


def run(path):
    # pcapng Decryption Secrets Blocks would let tshark decrypt TLS 1.3; we
    # never decrypt, so compare with what the wire shows in clear
    if path.endswith(".pcapng"):
        tmp = tempfile.NamedTemporaryFile(suffix=".pcapng", delete=False).name
        subprocess.run(["editcap", "--discard-all-secrets", path, tmp], check=True, capture_output=True)
        path = tmp
    cmd = ["tshark", "-r", path, "-o", "tcp.desegment_tcp_streams:TRUE", "-d", "tcp.port==8057,tls",
           "-Y", "tls.handshake || tls.alert_message", "-T", "fields", "-E", "occurrence=a",
           "-E", "aggregator=|", "-E", "separator=\t"]
    for f in FIELDS:
        cmd += ["-e", f]
    p = subprocess.run(cmd, capture_output=True, text=True)
    out = []
    for line in p.stdout.splitlines():
        v = dict(zip(FIELDS, line.split("\t")))
        lst = lambda k: [x for x in v.get(k, "").split("|") if x != ""]
        types = [int(t) for t in lst("tls.handshake.type")]
        e = {"frame": int(v["frame.number"]), "stream": int(v["tcp.stream"]), "handshake_types": types,
             "certificates": len(lst("tls.handshake.certificate_length")), "san_dns": lst("x509ce.dNSName"),
             "alerts": [int(a) for a in lst("tls.alert_message.desc")]}
        if 1 in types:
            e["sni"] = (lst("tls.handshake.extensions_server_name") or [None])[0]
            cs = lst("tls.handshake.cipher_suites_length")
            e["cipher_suites"] = int(cs[0]) // 2 if cs else None
        if 2 in types and 1 not in types:
            cs = lst("tls.handshake.ciphersuite")
            e["cipher_suite"] = int(cs[0], 16) if cs and cs[0].startswith("0x") else (int(cs[0]) if cs else None)
            sv = lst("tls.handshake.extensions.supported_version")
            e["selected_version"] = int(sv[0], 16) if sv else None
        out.append(e)
    return out


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = os.path.join(here, "..", "tests", "expected", "tls")
    os.makedirs(outdir, exist_ok=True)
    version = subprocess.run(["tshark", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    for path in sys.argv[1:]:
        frames = run(path)
        name = os.path.basename(path)
        with open(os.path.join(outdir, name + ".json"), "w") as fh:
            json.dump({"capture": name, "tshark": version, "frames": frames}, fh, indent=1, sort_keys=True)
            fh.write("\n")
        print(f"{name}: {len(frames)} frames with TLS handshake/alert")


if __name__ == "__main__":
    main()
