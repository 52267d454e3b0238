#!/usr/bin/env python3
"""capture.py IFACE DIR SECONDS: save the first ARP request, ARP reply, gratuitous ARP, neighbor
solicitation, solicited and unsolicited neighbor advertisement seen on IFACE as DIR/<kind>.bin."""
import os, socket, sys, time

iface, out, secs = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
s.settimeout(0.2)
seen = {}
end = time.time() + secs
while time.time() < end:
    try:
        frame = s.recv(2048)
    except socket.timeout:
        continue
    etype = int.from_bytes(frame[12:14], "big")
    kind = None
    if etype == 0x0806:
        op = int.from_bytes(frame[20:22], "big")
        spa, tpa = frame[28:32], frame[38:42]
        if spa == tpa:
            kind = "garp_request" if op == 1 else "garp_reply"
        else:
            kind = "arp_request" if op == 1 else "arp_reply"
    elif etype == 0x86DD and frame[20] == 58:
        t = frame[54]
        if t == 135:
            kind = "ndp_ns"
        elif t == 136:
            kind = "ndp_na_solicited" if frame[58] & 0x40 else "ndp_na_unsolicited"
    if kind and kind not in seen:
        seen[kind] = frame
        with open(os.path.join(out, kind + ".bin"), "wb") as f:
            f.write(frame)
print(" ".join(sorted(seen)))
