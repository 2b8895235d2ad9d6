#!/usr/bin/python3
"""Numbered UDP datagrams on several flows at once: does each flow arrive in order and intact?

    order_check.py recv ADDR PORT FLOWS COUNT
        prints "ready", receives until FLOWS * COUNT datagrams came or nothing came for 2 s
        (20 s before the first), prints one JSON line:
        {"flows": [{"flow", "ports", "received", "out_of_order", "duplicate", "corrupt",
                    "first_backwards"}...], "stray": N}
    order_check.py send ADDR PORT FLOWS COUNT MAX RATE
        sends COUNT datagrams on each of FLOWS sockets (one source port each), in bursts of 16
        per flow, flow after flow, paced to RATE datagrams/s in all; MAX is the largest UDP
        payload that fits the path. Prints one JSON line: {"ports": [...], "sent": [...]}

Datagram (flow f, number n): f (2 bytes) and n (4 bytes), then 32 bytes of SHA-256 over
(f, n, size), then bytes of a fixed pseudo-random block at an offset derived from (f, n). Its
size is a function of n: runs of equal sizes (so that GSO/GRO and USO may merge them), from
MAX down to the 38-byte minimum, some runs ending in a shorter datagram. So every byte and the
length are known from (f, n): a datagram that differs is "corrupt" (one whose flow number is
out of range is "stray"). A flow's datagram is "out_of_order" when its number is below the
highest seen on that flow before it, "duplicate" when equal to it; corrupt ones are left out
of both. "ports" lists the source ports a flow's datagrams came from.
"""
import hashlib
import json
import random
import socket
import sys
import time

SO_RCVBUFFORCE = 33  # Linux; not in Python's socket module
HEADER = 6
DIGEST = 32
MINIMUM = HEADER + DIGEST
BURST = 16
BLOCK = random.Random(6040).randbytes(1 << 16)


def size(n, largest):
    """Runs of 8 equal sizes; every third run ends in a shorter datagram (a GSO tail)."""
    run = n // 8
    sizes = (
        largest,
        largest,
        largest - 1,
        1200,
        MINIMUM,
        largest,
        512,
        largest - 100,
        100,
        largest,
        1000,
        largest - 2,
    )
    s = max(MINIMUM, min(largest, sizes[run % len(sizes)]))
    if run % 3 == 2 and n % 8 == 7:
        s = max(MINIMUM, s // 3)
    return s


def datagram(flow, n, length):
    head = flow.to_bytes(2, "big") + n.to_bytes(4, "big")
    digest = hashlib.sha256(head + length.to_bytes(2, "big")).digest()
    offset = (n * 7919 + flow * 104729) % (len(BLOCK) - 2048)
    return head + digest + BLOCK[offset : offset + length - MINIMUM]


def intact(data):
    """The (flow, number) of a datagram whose every byte is right, else None."""
    if len(data) < MINIMUM:
        return None
    flow = int.from_bytes(data[:2], "big")
    n = int.from_bytes(data[2:HEADER], "big")
    if data != datagram(flow, n, len(data)):
        return None
    return flow, n


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def recv(addr, port, flows, count):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    try:
        # As root, past net.core.rmem_max: the bursts must not overflow the socket.
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.bind((addr, port))
    s.settimeout(20)
    print("ready", flush=True)
    stats = [
        {
            "flow": f,
            "ports": [],
            "received": 0,
            "out_of_order": 0,
            "duplicate": 0,
            "corrupt": 0,
            "first_backwards": None,
        }
        for f in range(flows)
    ]
    highest = [-1] * flows
    stray = 0
    total = 0
    while total < flows * count:
        try:
            data, source = s.recvfrom(65536)
        except socket.timeout:
            break
        s.settimeout(2)
        total += 1
        flow = int.from_bytes(data[:2], "big") if len(data) >= 2 else flows
        if flow >= flows:
            stray += 1
            continue
        st = stats[flow]
        st["received"] += 1
        if source[1] not in st["ports"]:
            st["ports"].append(source[1])
        got = intact(data)
        if got is None:
            st["corrupt"] += 1
            continue
        n = got[1]
        if n < highest[flow]:
            st["out_of_order"] += 1
            if st["first_backwards"] is None:
                st["first_backwards"] = f"{n} after {highest[flow]}"
        elif n == highest[flow]:
            st["duplicate"] += 1
        else:
            highest[flow] = n
    print(json.dumps({"flows": stats, "stray": stray}), flush=True)


def send(addr, port, flows, count, largest, rate):
    socks = []
    for _ in range(flows):
        s = socket.socket(family(addr), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.connect((addr, port))
        socks.append(s)
    sent = [0] * flows
    start = time.monotonic()
    done = 0
    for first in range(0, count, BURST):
        for flow, s in enumerate(socks):
            for n in range(first, min(first + BURST, count)):
                data = datagram(flow, n, size(n, largest))
                try:
                    s.send(data)
                except ConnectionRefusedError:
                    # The error of an earlier datagram (the receiver was not there yet or any
                    # more); this one was not sent: once more, then the error is for it.
                    try:
                        s.send(data)
                    except ConnectionRefusedError:
                        continue
                sent[flow] += 1
                done += 1
        ahead = start + done / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps({"ports": [s.getsockname()[1] for s in socks], "sent": sent}), flush=True)


if __name__ == "__main__":
    verb, addr, port, flows, count = (
        sys.argv[1],
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        int(sys.argv[5]),
    )
    if verb == "recv":
        recv(addr, port, flows, count)
    else:
        send(addr, port, flows, count, int(sys.argv[6]), float(sys.argv[7]))
