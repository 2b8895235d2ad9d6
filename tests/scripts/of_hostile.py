#!/usr/bin/python3
"""Hostile and broken OpenFlow clients against a vxtund OpenFlow listener (tests/openflow.rs).

    of_hostile.py HOST PORT

Each probe prints one line saying how the switch answered; every socket has a timeout, so a
switch that stalls makes the probe fail instead of hanging. Exits non-zero on a stall.
"""
import os
import random
import socket
import struct
import sys
import time

from of_wire import HELLO13, OFPT_ERROR, read_msg

HOST, PORT = sys.argv[1], int(sys.argv[2])


def connect(hello=True):
    s = socket.create_connection((HOST, PORT), timeout=5)
    s.settimeout(5)
    if hello:
        s.sendall(HELLO13)
        read_msg(s)  # the switch's HELLO
    return s


def answer(s):
    """'closed', ('error', type, code) or ('other', type); a timeout raises."""
    try:
        msg = read_msg(s)
    except ConnectionResetError:
        return "closed"
    if msg is None:
        return "closed"
    typ, _, body = msg
    if typ == OFPT_ERROR:
        return ("error",) + struct.unpack("!HH", body[:4])
    return ("other", typ)


def closed_or_error(s):
    a = answer(s)
    return a == "closed" or a[0] == "error"


random.seed(7)

# Random bytes after a proper HELLO.
s = connect()
s.sendall(bytes(random.getrandbits(8) for _ in range(4096)))
ok = True
try:
    ok = closed_or_error(s)
except socket.timeout:
    ok = False
print("random:", "closed or error" if ok else "STALL")
s.close()

# A header whose length is shorter than the header itself.
s = connect()
s.sendall(struct.pack("!BBHI", 4, 5, 4, 9))
print("lying length:", "closed or error" if closed_or_error(s) else "STALL")
s.close()

# A FLOW_MOD whose OXM field runs past the end of its match.
s = connect()
match = struct.pack("!HH", 1, 4 + 8) + struct.pack("!I", 0x80000a08) + b"\x00" * 4
match += b"\x00" * ((8 - len(match) % 8) % 8)
body = struct.pack("!QQBBHHHIIIH2x", 0, 0, 0, 0, 0, 0, 32768, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
fm = body + match
s.sendall(struct.pack("!BBHI", 4, 14, 8 + len(fm), 10) + fm)
a = answer(s)
print("oxm past match:", "error" if a != "closed" and a[0] == "error" else "BAD %r" % (a,))
s.close()

# An unknown message type.
s = connect()
s.sendall(struct.pack("!BBHI", 4, 99, 8, 11))
a = answer(s)
print("unknown type:", "error BAD_REQUEST/BAD_TYPE" if a == ("error", 1, 1) else "BAD %r" % (a,))
s.close()

# An OpenFlow 1.0-only client: HELLO_FAILED, then the close.
s = connect(hello=False)
read_msg(s)
s.sendall(struct.pack("!BBHI", 1, 0, 8, 12))
a = answer(s)
print("version 1 hello:", "HELLO_FAILED" if a == ("error", 0, 0) else "BAD %r" % (a,))
s.close()

# A flood of echo requests: every one answered, in order.
s = connect()
n = 5000
s.sendall(b"".join(struct.pack("!BBHI", 4, 2, 8, 1000 + i) for i in range(n)))
answered = 0
for i in range(n):
    typ, xid, _ = read_msg(s)
    if typ == 3 and xid == 1000 + i:
        answered += 1
print("echo flood:", "answered" if answered == n else "BAD %d of %d" % (answered, n))
s.close()

# Hundreds of idle connections, then a real client still gets through.
idle = []
for _ in range(300):
    try:
        idle.append(socket.create_connection((HOST, PORT), timeout=5))
    except OSError:
        break
time.sleep(0.5)
s = connect()
s.sendall(struct.pack("!BBHI", 4, 2, 8, 77))
held = answer(s) == ("other", 3)
print("idle connections:", "held" if held else "BAD")
for c in idle:
    c.close()
s.close()
