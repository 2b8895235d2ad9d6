#!/usr/bin/python3
"""UDP datagrams whose every byte is checked at the far end.

    udp_check.py recv ADDR PORT COUNT    prints "ready", receives until COUNT datagrams came or
                                          nothing came for 3 s, prints
                                          "<received> <intact> <distinct>"
    udp_check.py send ADDR PORT COUNT    sends COUNT datagrams in bursts of 64, prints "<sent>"

Datagram number n carries n (8 bytes) and then bytes derived from n; its length is 1400 bytes,
but every 50th is shorter (n % 1000 + 100 bytes), so that a run of equal datagrams ends there.
"""
import hashlib
import socket
import sys
import time


def datagram(n):
    size = 1400 if n % 50 else n % 1000 + 100
    body = b""
    block = 0
    while len(body) < size - 8:
        body += hashlib.sha256(n.to_bytes(8, "big") + block.to_bytes(4, "big")).digest()
        block += 1
    return n.to_bytes(8, "big") + body[: size - 8]


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def recv(addr, port, count):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((addr, port))
    s.settimeout(3)
    print("ready", flush=True)
    received = intact = 0
    seen = set()
    while received < count:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        received += 1
        n = int.from_bytes(data[:8], "big")
        if data == datagram(n):
            intact += 1
            seen.add(n)
    print(received, intact, len(seen), flush=True)


def send(addr, port, count):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.connect((addr, port))
    for n in range(count):
        s.send(datagram(n))
        if n % 64 == 63:
            time.sleep(0.002)
    print(count, flush=True)


if __name__ == "__main__":
    verb, addr, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    (recv if verb == "recv" else send)(addr, port, count)
