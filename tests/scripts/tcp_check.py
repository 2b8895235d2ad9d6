#!/usr/bin/python3
"""A TCP transfer whose bytes are checked end to end.

    tcp_check.py recv ADDR PORT          prints "ready", accepts one connection, reads to the
                                          end, prints "<bytes> <sha256>"
    tcp_check.py send ADDR PORT BYTES    sends BYTES pseudo-random bytes (a fixed stream), prints
                                          "<bytes> <sha256>"
"""
import hashlib
import socket
import sys


def stream(total):
    """A deterministic byte stream: SHA-256 in counter mode."""
    block = 0
    sent = 0
    while sent < total:
        chunk = b"".join(
            hashlib.sha256((block + i).to_bytes(8, "big")).digest() for i in range(2048)
        )
        block += 2048
        chunk = chunk[: total - sent]
        sent += len(chunk)
        yield chunk


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def recv(addr, port):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    s.settimeout(60)
    print("ready", flush=True)
    conn, _ = s.accept()
    conn.settimeout(60)
    h = hashlib.sha256()
    n = 0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        h.update(data)
        n += len(data)
    print(n, h.hexdigest(), flush=True)


def send(addr, port, total):
    s = socket.create_connection((addr, port), timeout=60)
    h = hashlib.sha256()
    for chunk in stream(total):
        h.update(chunk)
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    print(total, h.hexdigest(), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(sys.argv[2], int(sys.argv[3]))
    else:
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
