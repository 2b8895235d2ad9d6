#!/usr/bin/python3
"""Hostile and unwelcome clients against a vxtund `pssl:` OpenFlow listener (tests/openflow.rs).

    of_tls_hostile.py HOST PORT DIR

DIR holds the test's PKI (tests/common/pki.rs): ctl-{privkey,cert}.pem (a good controller
certificate), pki/switchca/cacert.pem (what vxtund's certificate chains to), and the unwelcome
ones: other-*.pem (another PKI's controller), old-*.pem (expired), big-*.pem (a certificate
over vxtund's 16 KiB limit), chain-cert.pem (a chain over rustls's 64 KiB message limit).
Each probe prints one line; every socket has a timeout, so a stall fails the probe instead of
hanging. Exits non-zero on a stall.
"""
import os
import socket
import ssl
import struct
import sys
import time

from of_wire import HELLO13, read_msg

HOST, PORT, DIR = sys.argv[1], int(sys.argv[2]), sys.argv[3]
SWITCH_CA = os.path.join(DIR, "pki/switchca/cacert.pem")
stalled = False


def path(name):
    return os.path.join(DIR, name)


def context(cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # as Open vSwitch: the chain is checked, not a name
    ctx.load_verify_locations(SWITCH_CA)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def openflow_answers(s):
    """Sends HELLO and an ECHO request; True when the switch answers both."""
    s.sendall(HELLO13 + struct.pack("!BBHI", 4, 2, 8, 77))
    types = []
    while len(types) < 2:
        msg = read_msg(s)
        if msg is None:
            return False
        types.append(msg[0])
    return types == [0, 3]


def tls_client(cert=None, key=None):
    """'welcome' when the switch talks OpenFlow over TLS with this certificate, else
    'refused'; a timeout is a stall."""
    global stalled
    raw = socket.create_connection((HOST, PORT), timeout=15)
    try:
        s = context(cert, key).wrap_socket(raw)
        # With TLS 1.3 the server's refusal of a client certificate arrives after the
        # client's side of the handshake is done: on the first read.
        return "welcome" if openflow_answers(s) else "refused"
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return "refused"
    except socket.timeout:
        stalled = True
        return "STALL"
    finally:
        raw.close()


def closed_without_openflow(payload):
    """Sends raw bytes to the TLS port; 'closed' when the switch closes without ever sending
    an OpenFlow message (a TLS alert is fine)."""
    global stalled
    s = socket.create_connection((HOST, PORT), timeout=15)
    try:
        s.sendall(payload)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return "BAD: an OpenFlow message" if data[:1] == b"\x04" else "closed"
    except ConnectionResetError:
        return "closed"
    except socket.timeout:
        stalled = True
        return "STALL"
    finally:
        s.close()


print("good certificate:", tls_client(path("ctl-cert.pem"), path("ctl-privkey.pem")))
print("no certificate:", tls_client())
print("other CA:", tls_client(path("other-cert.pem"), path("other-privkey.pem")))
print("expired:", tls_client(path("old-cert.pem"), path("old-privkey.pem")))
print("oversized certificate:", tls_client(path("big-cert.pem"), path("big-privkey.pem")))
print("oversized chain:", tls_client(path("chain-cert.pem"), path("ctl-privkey.pem")))
print("plain openflow:", closed_without_openflow(HELLO13))
print("garbage:", closed_without_openflow(os.urandom(4096)))

# Handshakes that never finish: a silent client, and one that starts a record and stops.
start = time.monotonic()
silent = socket.create_connection((HOST, PORT), timeout=20)
partial = socket.create_connection((HOST, PORT), timeout=20)
partial.sendall(b"\x16\x03\x01\x40\x00" + b"\x01" * 100)
for name, s in (("silent", silent), ("partial", partial)):
    try:
        while s.recv(4096):
            pass
        print("%s handshake: closed after %.0f s" % (name, time.monotonic() - start))
    except ConnectionResetError:
        print("%s handshake: closed after %.0f s" % (name, time.monotonic() - start))
    except socket.timeout:
        stalled = True
        print("%s handshake: STALL" % name)
    s.close()

# Hundreds of idle connections mid-handshake, then a good client still gets through.
idle = []
for _ in range(300):
    try:
        idle.append(socket.create_connection((HOST, PORT), timeout=5))
    except OSError:
        break
time.sleep(0.5)
print("idle connections:", "held" if tls_client(path("ctl-cert.pem"), path("ctl-privkey.pem")) == "welcome" else "BAD")
for c in idle:
    c.close()

sys.exit(1 if stalled else 0)
