#!/usr/bin/python3
"""Sends or counts raw Ethernet frames of the local experimental EtherType 0x88b5 on eth0.

    l2frame.py send NONCE            one broadcast frame carrying NONCE
    l2frame.py count SECONDS NONCE   prints "ready", then after SECONDS the number of frames
                                     received (not sent) that carry NONCE
"""
import socket
import sys
import time

ETHERTYPE = 0x88B5


def send(nonce):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind(("eth0", 0))
    with open("/sys/class/net/eth0/address") as f:
        src = bytes.fromhex(f.read().strip().replace(":", ""))
    payload = nonce.encode().ljust(46, b"\0")
    s.send(b"\xff" * 6 + src + ETHERTYPE.to_bytes(2, "big") + payload)


def count(seconds, nonce):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    s.bind(("eth0", 0))
    s.settimeout(0.1)
    print("ready", flush=True)
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        try:
            data, addr = s.recvfrom(4096)
        except socket.timeout:
            continue
        if addr[2] != socket.PACKET_OUTGOING and nonce.encode() in data:
            n += 1
    print(n, flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "send":
        send(sys.argv[2])
    else:
        count(float(sys.argv[2]), sys.argv[3])
