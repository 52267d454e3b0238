#!/usr/bin/env python3
"""neigh_watch.py IFACE SECONDS IP...: print one line per ARP reply / gratuitous ARP / Neighbor
Advertisement seen on IFACE that concerns one of the IPs:
"<kind> <ip> <sender mac> <seconds since ready>"."""
import ipaddress, socket, sys, time

iface, secs, ips = sys.argv[1], float(sys.argv[2]), set(sys.argv[3:])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
s.bind((iface, 0))
s.settimeout(0.05)
start = time.time()
end = start + secs
print("ready", flush=True)
while time.time() < end:
    try:
        frame, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    mac = ":".join(f"{b:02x}" for b in frame[6:12])
    etype = int.from_bytes(frame[12:14], "big")
    if etype == 0x0806:
        op = int.from_bytes(frame[20:22], "big")
        spa = str(ipaddress.IPv4Address(frame[28:32]))
        tpa = str(ipaddress.IPv4Address(frame[38:42]))
        if spa in ips and (op == 2 or spa == tpa):
            kind = "arp-reply" if op == 2 and spa != tpa else "arp-gratuitous"
            print(f"{kind} {spa} {mac} {time.time() - start:.3f}", flush=True)
    elif etype == 0x86DD and frame[20] == 58 and frame[54] == 136:
        target = str(ipaddress.IPv6Address(frame[62:78]))
        if target in ips:
            solicited = "na" if frame[58] & 0x40 else "na-unsolicited"
            print(f"{solicited} {target} {mac} {time.time() - start:.3f}", flush=True)
