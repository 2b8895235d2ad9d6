#!/usr/bin/python3
"""Bursts of consecutive TCP segments of one flow, each in a VXLAN datagram, such as vxtund
coalesces into one superframe for its TAP.

    vxlan_segments.py SRC DST VNI DST_MAC OUTER INNER

SRC, DST: the outer IPv4 addresses (DST port 8472). OUTER: "checksum" sends the outer UDP
checksum, "zero" sends none (SO_NO_CHECK, as the kernel's vxlan does by default). INNER: "good"
or "bad" TCP checksums. The inner flow is 10.77.0.2:40000 -> 10.77.0.1:9 (nothing listens;
the segments only have to reach the TAP). Sends 6 bursts of 32 segments of 1000 bytes, 50 ms
apart, and prints how many datagrams it sent. Talks only to DST, inside the test's namespace.
"""
import socket
import struct
import sys
import time

SO_NO_CHECK = 11


def fold(total):
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def csum(data):
    if len(data) % 2:
        data += b"\0"
    return ~fold(sum(struct.unpack("!%dH" % (len(data) // 2), data))) & 0xFFFF


def segment(src_mac, dst_mac, ident, seq, payload, good):
    saddr, daddr = socket.inet_aton("10.77.0.2"), socket.inet_aton("10.77.0.1")
    tcp = struct.pack("!HHIIBBHHH", 40000, 9, seq, 1, 5 << 4, 0x10, 1000, 0, 0) + payload
    pseudo = saddr + daddr + struct.pack("!BBH", 0, 6, len(tcp))
    check = csum(pseudo + tcp)
    if not good:
        check ^= 0x00FF
    tcp = tcp[:16] + struct.pack("!H", check) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident, 0x4000, 64, 6, 0, saddr, daddr)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dst_mac + src_mac + b"\x08\x00" + ip + tcp


def main():
    src, dst, vni, dst_mac, outer, inner = sys.argv[1:7]
    vxlan = struct.pack("!II", 0x08000000, int(vni) << 8)
    dst_mac = bytes.fromhex(dst_mac.replace(":", ""))
    src_mac = bytes.fromhex("020000007702")
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if outer == "zero":
        s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
    s.bind((src, 0))
    seq, ident, sent = 1000, 1, 0
    for _ in range(6):
        burst = []
        for _ in range(32):
            burst.append(vxlan + segment(src_mac, dst_mac, ident, seq, b"x" * 1000, inner == "good"))
            seq += 1000
            ident += 1
        for datagram in burst:
            s.sendto(datagram, (dst, 8472))
            sent += 1
        time.sleep(0.05)
    print(sent)


main()
