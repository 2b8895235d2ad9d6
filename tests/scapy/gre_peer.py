"""A GRE peer written with scapy, for tests/gre_scapy.rs: an implementation of GRE that nobody
on the vxtund team wrote.

Run inside the peer's namespace with Debian's /usr/bin/python3 (python3-scapy):
    gre_peer.py TAP_MAC LOCAL REMOTE
It sends Ethernet-over-GRE packets carrying an ICMP echo request to vxtund's TAP address
(10.78.0.1), with and without key, checksum and sequence number, captures what vxtund sends back
on the underlay, checks every GRE field with scapy's parser, and prints one JSON object per case.
Then it sends packets vxtund must refuse (wrong key, bad checksum, version 1, routing bit,
non-Ethernet payload), five of each, and prints how many replies came back (0 expected).
"""
import json
import sys
import time

from scapy.all import GRE, ICMP, IP, AsyncSniffer, Ether, Raw, conf, raw, send

conf.verb = 0
tap_mac, local, remote = sys.argv[1:4]
PEER_MAC = "02:00:00:00:00:02"


def inner(seq):
    return (Ether(src=PEER_MAC, dst=tap_mac) / IP(src="10.78.0.2", dst="10.78.0.1")
            / ICMP(type=8, id=0x4242, seq=seq) / Raw(b"vxtund-scapy"))


def exchange(gre, seq, expect_reply=True):
    """Sends one packet; returns vxtund's GRE packets seen on the underlay within 2 s."""
    sniffer = AsyncSniffer(iface="ul0", store=True,
                           lfilter=lambda p: IP in p and p[IP].proto == 47 and p[IP].src == remote)
    sniffer.start()
    time.sleep(0.3)
    send(IP(src=local, dst=remote) / gre / inner(seq))
    deadline = time.time() + 2
    while time.time() < deadline and expect_reply and not sniffer.results:
        time.sleep(0.05)
    if not expect_reply:
        time.sleep(1)
    return sniffer.stop() or []


def check_reply(pkt):
    """Every field of vxtund's packet, as scapy's dissector reads it."""
    g = pkt[GRE]
    report = {
        "proto": g.proto,
        "version": g.version,
        "routing_present": g.routing_present,
        "key": g.key if g.key_present else None,
        "seq": g.seqence_number if g.seqnum_present else None,
        "csum_present": bool(g.chksum_present),
        "outer_src": pkt[IP].src,
        "outer_dst": pkt[IP].dst,
        "outer_df": bool(pkt[IP].flags.DF),
        "outer_ttl": pkt[IP].ttl,
    }
    # The outer IPv4 header as the kernel would check it: its checksum and total length.
    outer = IP(raw(pkt[IP]))
    claimed = outer.chksum
    outer.chksum = None
    report["outer_header_ok"] = (IP(raw(outer)).chksum == claimed
                                 and pkt[IP].len == len(raw(pkt[IP])))
    if g.chksum_present:
        rebuilt = GRE(raw(g))
        claimed = rebuilt.chksum
        rebuilt.chksum = None
        report["csum_ok"] = GRE(raw(rebuilt)).chksum == claimed
    eth = g.payload
    report["inner_dst"] = eth.dst
    report["inner_src"] = eth.src
    report["icmp_type"] = eth[ICMP].type if ICMP in eth else None
    report["icmp_id"] = eth[ICMP].id if ICMP in eth else None
    report["icmp_seq"] = eth[ICMP].seq if ICMP in eth else None
    report["payload_ok"] = Raw in eth and eth[Raw].load == b"vxtund-scapy"
    return report


cases = [
    ("plain", GRE(proto=0x6558)),
    ("key", GRE(proto=0x6558, key_present=1, key=77)),
    ("key_csum", GRE(proto=0x6558, key_present=1, key=77, chksum_present=1)),
    ("key_csum_seq", GRE(proto=0x6558, key_present=1, key=77, chksum_present=1,
                         seqnum_present=1, seqence_number=9)),
]
for n, (name, gre) in enumerate(cases, start=1):
    replies = exchange(gre, n)
    print(json.dumps({"case": name, "replies": [check_reply(p) for p in replies]}), flush=True)

bad = [
    ("wrong_key", GRE(proto=0x6558, key_present=1, key=78)),
    ("bad_checksum", GRE(proto=0x6558, chksum_present=1, chksum=0x1234)),
    ("version_1", GRE(proto=0x6558, version=1)),
    ("routing", GRE(proto=0x6558, routing_present=1)),
    ("not_ethernet", GRE(proto=0x0800)),
]
for name, gre in bad:
    for i in range(5):
        send(IP(src=local, dst=remote) / gre / inner(100 + i))
    replies = exchange(gre, 200, expect_reply=False)
    print(json.dumps({"case": name, "replies": [check_reply(p) for p in replies]}), flush=True)
