#!/usr/bin/python3
"""New TCP connections per second, for benches/iperf.sh (CONNS=1).

    conn_rate.py server ADDR PORT            accepts and closes connections until killed
    conn_rate.py client ADDR PORT SECONDS N  N processes each open, write one byte to, and
                                             close connections one after another for SECONDS;
                                             prints the connections completed per second

Every connection is a new flow: through vxtund its SYN is decided in userspace (it clamps the
MSS), and so is its first frame after it, whose decision the kernel fast path then caches.
"""
import multiprocessing
import socket
import sys
import time


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def server(addr, port):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(4096)
    while True:
        c, _ = s.accept()
        c.close()


def one_client(addr, port, seconds, out):
    done = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c = socket.socket(family(addr), socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.settimeout(2)
        try:
            c.connect((addr, port))
            c.send(b"x")
            done += 1
        except OSError:
            pass
        finally:
            c.close()
    out.put(done)


def client(addr, port, seconds, n):
    out = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=one_client, args=(addr, port, seconds, out))
             for _ in range(n)]
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    print(f"{total / seconds:.0f}")


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2], int(sys.argv[3]))
    else:
        client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
