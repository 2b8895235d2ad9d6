#!/usr/bin/python3
"""Floods an interface with Ethernet frames from random unicast source MACs to random unicast
destinations (unknown to every switch), for a bounded time.

    flood.py IFACE SECONDS [RATE]

RATE frames per second (default: as fast as it can). Prints the number of frames sent. Used by tests/controller.rs to load the packet-in path.
"""
import os
import socket
import sys
import time

iface, seconds = sys.argv[1], float(sys.argv[2])
rate = float(sys.argv[3]) if len(sys.argv) > 3 else None
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
# 4096 distinct frames, precomputed: locally administered unicast MACs (02:xx:...).
frames = []
for _ in range(4096):
    r = os.urandom(10)
    dst = b"\x02" + r[:5]
    src = b"\x02" + r[5:]
    # The local experimental EtherType 0x88b5 and 46 bytes of payload: no IP, so no stack or
    # bridge filter on the way looks into it.
    frames.append(dst + src + b"\x88\xb5" + bytes(46))
sent = 0
start = time.monotonic()
end = start + seconds
while time.monotonic() < end:
    for f in frames[:256]:
        try:
            s.send(f)
            sent += 1
        except OSError:
            pass
    frames.append(frames.pop(0))
    if rate:
        ahead = start + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
print(sent)
