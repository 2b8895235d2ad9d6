#!/usr/bin/python3
"""Stand-in OpenFlow 1.3 switch on a Unix socket: records every message it receives (hex, one
line per message, tagged with the connection number) and answers just enough for
`ovs-ofctl -O OpenFlow13` to finish its commands. It captured `CAPTURED` in
src/openflow/vectors.rs:

    python3 of_standin.py /tmp/ofcap/sw.sock /tmp/ofcap/log.txt &   # note its PID
    echo "# add_ipv4_prefix" >> /tmp/ofcap/log.txt
    ovs-ofctl -O OpenFlow13 add-flow unix:/tmp/ofcap/sw.sock 'ip,nw_dst=10.0.0.0/8,actions=output:2'
    ...                                                              # then kill the PID

If /tmp/ofcap/table_features_reply.hex exists (a whole MULTIPART_REPLY in hex, e.g. vxtund's
own encoding), it is served for TABLE_FEATURES requests instead of the built-in one: that is how
vxtund's reply was shown to satisfy ovs-ofctl's name lookups (which need all eight properties).
"""
import os, socket, struct, sys, threading

PATH = sys.argv[1]
LOG = sys.argv[2]
TF_FILE = "/tmp/ofcap/table_features_reply.hex"
lock = threading.Lock()
conn_no = [0]

def msg(t, xid, body=b""):
    return struct.pack("!BBHI", 4, t, 8 + len(body), xid) + body

def mp_reply(xid, mp_type, body):
    return msg(19, xid, struct.pack("!HH4x", mp_type, 0) + body)

def pad8(b):
    return b + b"\0" * (-len(b) % 8)

def prop(t, payload):
    return pad8(struct.pack("!HH", t, 4 + len(payload)) + payload)

def oxm(field, length, mask=False):
    return (0x8000 << 16) | (field << 9) | (int(mask) << 8) | length

def port(no, mac, name):
    return struct.pack("!I4x6s2x16sIIIIIIII", no, mac, name, 0, 4, 0, 0, 0, 0, 0, 0)

def table_features():
    fields = [(0, 4, 0), (3, 6, 1), (4, 6, 1), (5, 2, 0), (10, 1, 0), (11, 4, 1), (12, 4, 1),
              (13, 2, 0), (14, 2, 0), (15, 2, 0), (16, 2, 0), (26, 16, 1), (27, 16, 1)]
    match = b"".join(struct.pack("!I", oxm(f, l, m)) for f, l, m in fields)
    wild = b"".join(struct.pack("!I", oxm(f, l, 0)) for f, l, m in fields)
    props = (prop(0, struct.pack("!HH", 4, 4)) + prop(2, b"") + prop(4, b"")
             + prop(6, struct.pack("!HH", 0, 4)) + prop(8, match) + prop(10, wild)
             + prop(12, b"") + prop(14, b""))
    name = b"classifier".ljust(32, b"\0")
    return struct.pack("!HB5x32sQQII", 64 + len(props), 0, name, 0, 0, 0, 100000) + props

def answer(t, xid, body):
    if t == 0:
        return msg(0, xid, struct.pack("!HHI", 1, 8, 1 << 4))
    if t == 2:
        return msg(3, xid, body)
    if t == 5:
        return msg(6, xid, struct.pack("!QIBB2xII", 1, 0, 1, 0, 0x7, 0))
    if t == 7:
        return msg(8, xid, struct.pack("!HH", 0, 128))
    if t == 20:
        return msg(21, xid)
    if t == 18:
        mp_type = struct.unpack("!H", body[:2])[0]
        if mp_type == 0:
            s = lambda x, n: x.encode().ljust(n, b"\0")
            return mp_reply(xid, 0, s("vxtund", 256) + s("userspace", 256) + s("0.1", 256) + s("None", 32) + s("stand-in", 256))
        if mp_type == 1:
            return mp_reply(xid, 1, b"")
        if mp_type == 2:
            return mp_reply(xid, 2, struct.pack("!QQI4x", 0, 0, 0))
        if mp_type == 3:
            return mp_reply(xid, 3, struct.pack("!B3xIQQ", 0, 0, 0, 0))
        if mp_type == 4:
            return mp_reply(xid, 4, struct.pack("!I4x12QII", 1, *([0] * 12), 0, 0))
        if mp_type == 13:
            return mp_reply(xid, 13, port(1, b"\x02\0\0\0\0\x01", b"tun1") + port(0xfffffffe, b"\x02\0\0\0\0\xfe", b"vxt0"))
        if mp_type == 12:
            if os.path.exists(TF_FILE):
                ours = bytes.fromhex(open(TF_FILE).read().strip())
                return ours[:4] + struct.pack("!I", xid) + ours[8:]
            return mp_reply(xid, 12, table_features())
    return None

def serve(c, n):
    buf = b""
    while True:
        data = c.recv(65536)
        if not data:
            break
        buf += data
        while len(buf) >= 8:
            length = struct.unpack("!H", buf[2:4])[0]
            if len(buf) < length:
                break
            m, buf = buf[:length], buf[length:]
            t, xid = m[1], struct.unpack("!I", m[4:8])[0]
            with lock:
                with open(LOG, "a") as f:
                    f.write("%d %s\n" % (n, m.hex()))
            a = answer(t, xid, m[8:])
            if a:
                c.sendall(a)
    c.close()

if os.path.exists(PATH):
    os.unlink(PATH)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(PATH)
s.listen(8)
while True:
    c, _ = s.accept()
    conn_no[0] += 1
    threading.Thread(target=serve, args=(c, conn_no[0]), daemon=True).start()
