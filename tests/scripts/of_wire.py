"""OpenFlow 1.3 on the wire for the hostile-client scripts (of_hostile.py, of_tls_hostile.py):
the HELLO they send and reading whole messages from a socket (plain or TLS)."""
import struct

# HELLO, version 1.3, with a version bitmap element offering 1.3 only.
HELLO13 = struct.pack("!BBHI", 4, 0, 16, 1) + struct.pack("!HHI", 1, 8, 1 << 4)
OFPT_ERROR = 1


def read_exact(s, n):
    """n bytes from s, or None when it closes first."""
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_msg(s):
    """The next message as (type, xid, body), or None when s closes first."""
    head = read_exact(s, 8)
    if head is None:
        return None
    version, typ, length, xid = struct.unpack("!BBHI", head)
    body = read_exact(s, length - 8) if length > 8 else b""
    return typ, xid, body
