#!/usr/bin/env python3
"""Splits the BGP messages out of a pcap (Ethernet or Linux cooked, IPv4/IPv6, TCP port 179).

Usage: pcap_bgp.py FILE.pcap [OUT_PREFIX]
Prints one line per message (direction, type, length); with OUT_PREFIX writes each message to
OUT_PREFIX-N.bin. Used to make the test vectors in src/evpn/vectors/ from FRR's and GoBGP's
captures. Plain Python, no scapy; reassembles nothing (each segment must hold whole messages).
"""
import struct
import sys


def packets(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        yield linktype, data[off + 16:off + 16 + incl]
        off += 16 + incl


def tcp_payload(linktype, frame):
    if linktype == 1:
        ethertype, l3 = struct.unpack(">H", frame[12:14])[0], 14
    elif linktype == 113:
        ethertype, l3 = struct.unpack(">H", frame[14:16])[0], 16
    elif linktype == 276:
        ethertype, l3 = struct.unpack(">H", frame[0:2])[0], 20
    else:
        ethertype, l3 = (0x0800 if frame[0] >> 4 == 4 else 0x86DD), 0
    if ethertype == 0x0800:
        ihl = (frame[l3] & 0x0F) * 4
        proto, src, dst = frame[l3 + 9], frame[l3 + 12:l3 + 16], frame[l3 + 16:l3 + 20]
        total = struct.unpack(">H", frame[l3 + 2:l3 + 4])[0]
        l4, end = l3 + ihl, l3 + total
    elif ethertype == 0x86DD:
        proto, src, dst = frame[l3 + 6], frame[l3 + 8:l3 + 24], frame[l3 + 24:l3 + 40]
        l4 = l3 + 40
        end = l4 + struct.unpack(">H", frame[l3 + 4:l3 + 6])[0]
    else:
        return None
    if proto != 6:
        return None
    doff = (frame[l4 + 12] >> 4) * 4
    sport, dport = struct.unpack(">HH", frame[l4:l4 + 4])
    return (src, sport, dst, dport), frame[l4 + doff:end]


def main():
    path = sys.argv[1]
    prefix = sys.argv[2] if len(sys.argv) > 2 else None
    n = 0
    for linktype, frame in packets(path):
        got = tcp_payload(linktype, frame)
        if not got:
            continue
        (src, sport, dst, dport), payload = got
        while len(payload) >= 19 and payload[:16] == b"\xff" * 16:
            length = struct.unpack(">H", payload[16:18])[0]
            msg, payload = payload[:length], payload[length:]
            print(f"{n}: {sport}->{dport} type {msg[18]} len {length}")
            if prefix:
                open(f"{prefix}-{n}.bin", "wb").write(msg)
            n += 1


if __name__ == "__main__":
    main()
