#!/usr/bin/env python3
"""Hostile clients for vxtund's metrics endpoint: junk bytes, an oversized head, a slow client,
a flood of idle connections, other methods and paths. Bounded in count and time; talks only to
the address it is given (the test's own namespace loopback). Prints one line per check and exits
non-zero when the endpoint misbehaved (a good request not answered in the end)."""

import socket
import sys
import time

HOST, PORT = sys.argv[1], int(sys.argv[2])


def exchange(data, wait=10.0):
    # Generous: the answer is what is checked, not its speed, and the suite loads the machine.
    s = socket.create_connection((HOST, PORT), timeout=wait)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out
    except OSError as e:
        return ("error: %s" % e).encode()
    finally:
        s.close()


def status(answer):
    line = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    return line


print("junk:", status(exchange(bytes(range(256)) * 4)))
# The server answers 431 and closes while most of this head is still unread, so the kernel may
# reset the connection before the answer is read: either is a refusal (the server counts it).
long_head = status(exchange(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n"))
print("long head:", "reset" if long_head.startswith("error:") else long_head)
print("post:", status(exchange(b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")))
print("path:", status(exchange(b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")))

# Clients that shut their side down right after the request (as exchange() does) must still be
# answered. The server once closed on that end of file before writing, about once in 700
# requests; 3000 of them take about a second.
half_closed = 3000
answered = sum(
    exchange(b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 404")
    for _ in range(half_closed)
)
print("half-closed requests answered: %d of %d" % (answered, half_closed))

# A flood of idle connections: more than the limit, held open without a byte past the
# server's header timeout (5 s), then let go.
idle = []
for _ in range(200):
    try:
        idle.append(socket.create_connection((HOST, PORT), timeout=2))
    except OSError:
        break
print("idle connections opened:", len(idle))
time.sleep(6.5)
for s in idle:
    s.close()
# A slow client: half a request line, then nothing; the server closes it.
slow = socket.create_connection((HOST, PORT), timeout=15)
slow.sendall(b"GET /metr")
start = time.time()
try:
    slow.recv(100)
except OSError:
    pass
print("slow client closed after %.1f s" % (time.time() - start))
slow.close()

# After all that, a good request must be answered.
deadline = time.time() + 15
while True:
    answer = exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    if answer.startswith(b"HTTP/1.1 200") and b"vxtund_build_info" in answer:
        print("good request: 200")
        break
    if time.time() > deadline:
        print("good request not answered:", status(answer))
        sys.exit(1)
    time.sleep(0.5)
