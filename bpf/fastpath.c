// SPDX-License-Identifier: MIT OR GPL-2.0
//
// vxtund's kernel fast path: a cache of the switch's decisions, applied by two TC programs
// (attached through tcx links, which the kernel removes when the daemon's last descriptor to
// them closes, SIGKILL included).
//
// - vxt_encap, on the TAP's egress: a frame the host sends into the TAP whose flow has an entry
//   is encapsulated here (VXLAN or Ethernet over GRE, over IPv4 or IPv6) and redirected out of
//   the underlay device, instead of being queued for vxtund to read.
// - vxt_decap, on the underlay device's ingress: a VXLAN datagram or GRE packet from a
//   configured remote whose inner flow has an entry is decapsulated here and redirected into
//   the TAP as if vxtund had written it.
//
// Everything else takes the userspace path unchanged (TCX_NEXT): a miss, a stale entry, a
// frame the cache never holds (non-IP, ARP and ND ride on that, VLAN tags, IPv4 fragments,
// IPv6 extension headers, TCP SYNs whose MSS vxtund clamps), and a frame too big for the
// tunnel (vxtund answers it), GRE with a checksum or sequence numbers, and superframes to
// VXLAN over IPv6 (the outer UDP checksum IPv6 requires cannot be asked of the kernel's
// segmentation from here). vxtund decides, installs entries, and bumps the generation
// whenever a decision may change; an entry of an older generation is a miss. An entry is
// installed pending and made active once vxtund has sent the frames of the flow it still held,
// so that a flow's frames do not overtake each other when the kernel takes it over.
//
// The layouts of fp_key, fp_val and the stats indices are mirrored in src/fastpath.rs.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Newer than Debian 12's UAPI headers; the kernel has them.
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

#define PASS TC_ACT_UNSPEC // tcx: the next program, then the stack (vxtund's own path)

#define DIR_TAP 0
#define DIR_VXLAN 1
#define DIR_GRE 2

#define ACT_ENCAP 1
#define ACT_DECAP 2

#define TUN_VXLAN 0
#define TUN_GRE 1

#define DF_UNSET 0
#define DF_SET 1
#define DF_INHERIT 2

#define ECN_MASK 3
#define ECN_ECT0 2
#define ECN_ECT1 1
#define ECN_CE 3

#ifndef IPPROTO_GRE
#define IPPROTO_GRE 47
#endif
#define ETH_P_TEB_ 0x6558 // Transparent Ethernet Bridging: Ethernet over GRE
#define GRE_KEYED 0x2000 // the K bit of GRE's flags and version word (RFC 2890)

#define ETH_LEN 14
#define IP4_LEN 20
#define IP6_LEN 40
#define UDP_LEN 8
#define VXLAN_LEN 8
#define GRE_LEN 4
#define GRE_KEY_LEN 4
// What encapsulation adds in front of the inner IP packet: outer IP, UDP and VXLAN (or GRE and
// its key), and the inner Ethernet header.
#define VXLAN4_ROOM (IP4_LEN + UDP_LEN + VXLAN_LEN + ETH_LEN)
#define VXLAN6_ROOM (IP6_LEN + UDP_LEN + VXLAN_LEN + ETH_LEN)
#define GRE4_ROOM (IP4_LEN + GRE_LEN + ETH_LEN)
#define GRE6_ROOM (IP6_LEN + GRE_LEN + ETH_LEN)

struct fp_key {
	__u8 dir; // DIR_*
	__u8 l3; // 4 or 6
	__u8 proto;
	__u8 outer_l3; // from a tunnel: 4 or 6
	__u32 vni; // DIR_VXLAN: the datagram's VNI; DIR_GRE: its key (0 without)
	__u8 outer_src[16]; // from a tunnel: the remote's address (IPv4: the first four bytes)
	__u8 outer_dst[16]; // from a tunnel: the local address
	__u16 outer_port; // DIR_VXLAN: the local UDP port; DIR_GRE: the flags word (0 or GRE_KEYED)
	__u16 dl_type; // host order
	__u8 dl_dst[6];
	__u8 dl_src[6];
	__u8 nw_src[16];
	__u8 nw_dst[16];
	__u16 tp_src; // host order; 0 unless TCP or UDP
	__u16 tp_dst;
};

struct fp_val {
	__u64 packets;
	__u64 bytes;
	__u64 gen; // the generation the decision was made in
	__u64 deadline_ns; // CLOCK_MONOTONIC; 0: none (a MAC table entry's expiry otherwise)
	__u32 action;
	__u32 ifindex; // ENCAP: the underlay device; DECAP: the TAP
	__u32 mtu; // ENCAP: the largest inner IP packet the tunnel carries; 0: no limit
	__u32 vni; // ENCAP: the VNI, or the GRE key
	__u8 saddr[16]; // ENCAP: outer source (IPv4: the first four bytes)
	__u8 daddr[16]; // ENCAP: outer destination
	__u32 flow_label; // ENCAP over IPv6: the outer flow label (RFC 6438: the inner flow's hash)
	__u16 sport; // ENCAP, VXLAN: outer UDP source port (host order)
	__u16 dport; // ENCAP: VXLAN: outer UDP destination port; GRE: the flags word
	__u8 tos_inherit; // ENCAP: 1: the inner DSCP; 0: tos
	__u8 tos; // ENCAP: the fixed DSCP (ECN always follows the inner packet, RFC 6040)
	__u8 ttl_inherit; // ENCAP: 1: the inner TTL / hop limit; 0: ttl
	__u8 ttl;
	__u8 df; // ENCAP over IPv4: DF_*
	__u8 pending; // 1 until vxtund has sent what it still held of the flow (order)
	__u8 tunnel; // ENCAP: TUN_*
	__u8 outer_l3; // ENCAP: 4 or 6
};

enum {
	ST_ENCAP_HIT,
	ST_DECAP_HIT,
	ST_ENCAP_MISS,
	ST_DECAP_MISS,
	ST_STALE,
	ST_UNCACHEABLE,
	ST_TOO_BIG,
	ST_ERROR,
	ST_ECN_DROP_UP,
	ST_MAX,
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536); // set by the loader from the config
	__type(key, struct fp_key);
	__type(value, struct fp_val);
} cache SEC(".maps");

// [0]: the generation in force.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} generation SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

// The local UDP ports of VXLAN tunnels (host order): datagrams to other ports are not looked at.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u16);
	__type(value, __u8);
} vxlan_ports SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &what);
	if (n)
		*n += 1;
}

// What the parse of an inner frame found besides the key.
struct frame_info {
	__u32 l3_off; // where the IP header starts
	__u32 hdr_len; // Ethernet + IP + TCP/UDP header: what every segment of a superframe repeats
	__u32 ip_len; // the IP packet's length (total length, or 40 + payload length)
	__u32 ip_hlen; // the IP header's length
	__u16 l4_check; // the TCP or UDP checksum field as it is in the frame
	__u8 tos; // TOS / traffic class
	__u8 ttl;
	__u8 df;
};

// Reads the key of the Ethernet frame at `off`. Returns 0, or -1 for a frame the cache never
// holds (vxtund decides those every time).
static __always_inline int parse_frame(void *data, void *end, __u32 off, struct fp_key *k,
				       struct frame_info *fi)
{
	struct ethhdr *eth = data + off;
	if ((void *)(eth + 1) > end)
		return -1;
	__builtin_memcpy(k->dl_dst, eth->h_dest, 6);
	__builtin_memcpy(k->dl_src, eth->h_source, 6);
	if (eth->h_source[0] & 1)
		return -1;
	__u16 type = bpf_ntohs(eth->h_proto);
	k->dl_type = type;
	void *l4;
	fi->l3_off = off + ETH_LEN;
	if (type == ETH_P_IP) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return -1;
		if (ip->version != 4 || ip->ihl < 5)
			return -1;
		// Fragments: only the first carries the ports, so none is cached.
		if (ip->frag_off & bpf_htons(0x3fff))
			return -1;
		k->l3 = 4;
		k->proto = ip->protocol;
		__builtin_memcpy(k->nw_src, &ip->saddr, 4);
		__builtin_memcpy(k->nw_dst, &ip->daddr, 4);
		fi->ip_len = bpf_ntohs(ip->tot_len);
		fi->ip_hlen = ip->ihl * 4;
		fi->tos = ip->tos;
		fi->ttl = ip->ttl;
		fi->df = (ip->frag_off & bpf_htons(0x4000)) != 0;
		l4 = (void *)ip + ip->ihl * 4;
		fi->hdr_len = ETH_LEN + ip->ihl * 4;
	} else if (type == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return -1;
		if (ip6->version != 6)
			return -1;
		// Extension headers: vxtund walks them; the cache does not.
		if (ip6->nexthdr != IPPROTO_TCP && ip6->nexthdr != IPPROTO_UDP &&
		    ip6->nexthdr != IPPROTO_ICMPV6)
			return -1;
		k->l3 = 6;
		k->proto = ip6->nexthdr;
		__builtin_memcpy(k->nw_src, &ip6->saddr, 16);
		__builtin_memcpy(k->nw_dst, &ip6->daddr, 16);
		fi->ip_len = IP6_LEN + bpf_ntohs(ip6->payload_len);
		fi->ip_hlen = IP6_LEN;
		fi->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
		fi->ttl = ip6->hop_limit;
		fi->df = 1;
		l4 = (void *)(ip6 + 1);
		fi->hdr_len = ETH_LEN + IP6_LEN;
	} else {
		return -1;
	}
	if (k->proto == IPPROTO_TCP) {
		struct tcphdr *t = l4;
		if ((void *)(t + 1) > end)
			return -1;
		// SYNs carry the MSS vxtund clamps.
		if (t->syn)
			return -1;
		k->tp_src = bpf_ntohs(t->source);
		k->tp_dst = bpf_ntohs(t->dest);
		fi->l4_check = t->check;
		fi->hdr_len += t->doff * 4;
	} else if (k->proto == IPPROTO_UDP) {
		struct udphdr *u = l4;
		if ((void *)(u + 1) > end)
			return -1;
		k->tp_src = bpf_ntohs(u->source);
		k->tp_dst = bpf_ntohs(u->dest);
		fi->l4_check = u->check;
		fi->hdr_len += UDP_LEN;
	}
	return 0;
}

// The entry for `k`, if it is of the generation in force, not past its deadline, and active.
static __always_inline struct fp_val *lookup(struct fp_key *k)
{
	struct fp_val *v = bpf_map_lookup_elem(&cache, k);
	if (!v)
		return 0;
	__u32 zero = 0;
	__u64 *gen = bpf_map_lookup_elem(&generation, &zero);
	if (!gen || v->gen != *gen || (v->deadline_ns && bpf_ktime_get_ns() >= v->deadline_ns)) {
		count(ST_STALE);
		return 0;
	}
	if (v->pending)
		return 0;
	return v;
}

// Whether the frame (or every segment of a superframe) fits the tunnel MTU.
static __always_inline int fits(struct __sk_buff *skb, struct fp_val *v, struct frame_info *fi)
{
	if (!v->mtu)
		return 1;
	if (skb->gso_size)
		return fi->hdr_len - ETH_LEN + skb->gso_size <= v->mtu;
	return fi->ip_len <= v->mtu && skb->len - fi->l3_off <= v->mtu;
}

// Counts a hit: segments and the bytes of the frames they are, as vxtund counts split frames.
static __always_inline void hit(struct __sk_buff *skb, struct fp_val *v, struct frame_info *fi,
				__u32 len)
{
	__u64 segs = 1, bytes = len;
	if (skb->gso_size) {
		__u32 payload = len - fi->hdr_len;
		segs = (payload + skb->gso_size - 1) / skb->gso_size;
		if (segs == 0)
			segs = 1;
		bytes = len + (segs - 1) * fi->hdr_len;
	}
	__sync_fetch_and_add(&v->packets, segs);
	__sync_fetch_and_add(&v->bytes, bytes);
}

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

// Makes `room` bytes of room in front of the inner frame for the outer headers (the kernel
// inserts it after the Ethernet header, which then moves behind the room to be the inner one).
static __always_inline int grow(struct __sk_buff *skb, __u32 room, __u64 encap_flags)
{
	struct ethhdr inner_eth;
	if (bpf_skb_load_bytes(skb, 0, &inner_eth, ETH_LEN))
		return -1;
	__u64 flags = encap_flags | BPF_F_ADJ_ROOM_ENCAP_L2_ETH | BPF_F_ADJ_ROOM_ENCAP_L2(ETH_LEN) |
		      BPF_F_ADJ_ROOM_FIXED_GSO;
	if (bpf_skb_adjust_room(skb, room, BPF_ADJ_ROOM_MAC, flags))
		return -1;
	if (bpf_skb_store_bytes(skb, room, &inner_eth, ETH_LEN, 0))
		return -1;
	return 0;
}

// grow() for GRE over IPv`l3` (4 or 6), with a key or not. Each call passes constants (the
// function is inlined where `l3` and the branch taken are known), as grow() is given
// everywhere.
static __always_inline int grow_gre(struct __sk_buff *skb, int l3, int keyed)
{
	__u64 flags = BPF_F_ADJ_ROOM_ENCAP_L4_GRE |
		      (l3 == 4 ? BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 : BPF_F_ADJ_ROOM_ENCAP_L3_IPV6);
	__u32 base = l3 == 4 ? GRE4_ROOM : GRE6_ROOM;
	if (keyed)
		return grow(skb, base + GRE_KEY_LEN, flags);
	return grow(skb, base, flags);
}

// The outer Ethernet header: its MACs come from the neighbour table at the redirect.
static __always_inline void outer_eth(struct ethhdr *eth, __u16 proto)
{
	__builtin_memset(eth->h_dest, 0, 6);
	__builtin_memset(eth->h_source, 0, 6);
	eth->h_proto = bpf_htons(proto);
}

static __always_inline void outer_ip4(struct iphdr *ip, struct fp_val *v, __u32 len, __u8 tos,
				      __u8 ttl, int df, __u8 proto)
{
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(len);
	ip->id = df ? 0 : (__u16)bpf_get_prandom_u32();
	ip->frag_off = df ? bpf_htons(0x4000) : 0;
	ip->ttl = ttl;
	ip->protocol = proto;
	ip->check = 0;
	__builtin_memcpy(&ip->saddr, v->saddr, 4);
	__builtin_memcpy(&ip->daddr, v->daddr, 4);
	ip->check = csum_fold(bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0));
}

static __always_inline void outer_ip6(struct ipv6hdr *ip6, struct fp_val *v, __u32 payload,
				      __u8 tos, __u8 ttl, __u8 proto)
{
	*(__be32 *)ip6 = bpf_htonl((6 << 28) | ((__u32)tos << 20) | (v->flow_label & 0xfffff));
	ip6->payload_len = bpf_htons(payload);
	ip6->nexthdr = proto;
	ip6->hop_limit = ttl;
	__builtin_memcpy(&ip6->saddr, v->saddr, 16);
	__builtin_memcpy(&ip6->daddr, v->daddr, 16);
}

static __always_inline void vxlan_header(__u32 *vx, struct fp_val *v)
{
	vx[0] = bpf_htonl(0x08000000);
	vx[1] = bpf_htonl(v->vni << 8);
}

// The GRE header: no checksum, no sequence number, the key if the tunnel has one. Returns its
// length.
static __always_inline void gre_header(__be16 *gre, struct fp_val *v)
{
	gre[0] = bpf_htons(v->dport);
	gre[1] = bpf_htons(ETH_P_TEB_);
}

// The one's complement sum of what follows the inner IP header (TCP, UDP or ICMP with its
// checksum filled in), which is the complement of the pseudo-header's sum: the part of the
// outer UDP checksum the inner frame's payload adds, without reading it. -1 for a frame
// whose checksum does not cover it so (UDP over IPv4 without a checksum, other protocols).
static __always_inline __s64 inner_l4_sum(struct fp_key *k, struct frame_info *fi)
{
	if (k->proto == IPPROTO_ICMP && k->l3 == 4)
		return 0; // ICMP's checksum has no pseudo-header: the message sums to zero
	if (k->proto != IPPROTO_TCP && k->proto != IPPROTO_UDP &&
	    !(k->proto == IPPROTO_ICMPV6 && k->l3 == 6))
		return -1;
	if (k->proto == IPPROTO_UDP && k->l3 == 4 && fi->l4_check == 0)
		return -1;
	__u32 l4_len = fi->ip_len - fi->ip_hlen;
	__u64 sum;
	if (k->l3 == 4) {
		__be32 pseudo[3] = {0, 0, bpf_htonl(((__u32)k->proto << 16) | (l4_len & 0xffff))};
		__builtin_memcpy(&pseudo[0], k->nw_src, 4);
		__builtin_memcpy(&pseudo[1], k->nw_dst, 4);
		sum = (__u32)bpf_csum_diff(0, 0, pseudo, sizeof(pseudo), 0);
	} else {
		__be32 pseudo[10];
		__builtin_memcpy(&pseudo[0], k->nw_src, 16);
		__builtin_memcpy(&pseudo[4], k->nw_dst, 16);
		pseudo[8] = bpf_htonl(l4_len);
		pseudo[9] = bpf_htonl(k->proto);
		sum = (__u32)bpf_csum_diff(0, 0, pseudo, sizeof(pseudo), 0);
	}
	// csum_fold complements: the complement of the folded sum, as a 16-bit addend.
	return csum_fold(sum);
}

SEC("classifier")
int vxt_encap(struct __sk_buff *skb)
{
	// Enough of the headers in the linear part to read them.
	if ((long)skb->data + 128 > (long)skb->data_end)
		bpf_skb_pull_data(skb, skb->len < 128 ? skb->len : 128);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct fp_key k = {};
	struct frame_info fi = {};
	k.dir = DIR_TAP;
	if (parse_frame(data, end, 0, &k, &fi) < 0) {
		count(ST_UNCACHEABLE);
		return PASS;
	}
	struct fp_val *v = lookup(&k);
	if (!v || v->action != ACT_ENCAP) {
		count(ST_ENCAP_MISS);
		return PASS;
	}
	if (!fits(skb, v, &fi)) {
		count(ST_TOO_BIG);
		return PASS;
	}
	__u32 inner_len = skb->len;
	__u8 ecn = fi.tos & ECN_MASK;
	__u8 tos = ((v->tos_inherit ? fi.tos : v->tos) & ~ECN_MASK) | (ecn == ECN_CE ? ECN_ECT0 : ecn);
	__u8 ttl = v->ttl_inherit ? fi.ttl : v->ttl;
	int df = v->df == DF_SET || (v->df == DF_INHERIT && fi.df);
	int keyed = v->dport == GRE_KEYED;
	__u8 tunnel = v->tunnel;

	if (tunnel == TUN_VXLAN && v->outer_l3 == 4) {
		if (grow(skb, VXLAN4_ROOM, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP))
			goto error;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		struct ethhdr *eth = data;
		struct iphdr *ip = (void *)(eth + 1);
		struct udphdr *udp = (void *)(ip + 1);
		__u32 *vx = (void *)(udp + 1);
		if ((void *)(vx + 2) > end)
			goto error;
		outer_eth(eth, ETH_P_IP);
		outer_ip4(ip, v, inner_len + VXLAN4_ROOM - ETH_LEN, tos, ttl, df, IPPROTO_UDP);
		udp->source = bpf_htons(v->sport);
		udp->dest = bpf_htons(v->dport);
		udp->len = bpf_htons(inner_len + VXLAN4_ROOM - ETH_LEN - IP4_LEN);
		udp->check = 0; // allowed over IPv4 (RFC 7348), as the kernel's vxlan sends by default
		vxlan_header(vx, v);
	} else if (tunnel == TUN_VXLAN) {
		// IPv6 requires the UDP checksum: it is computed here, over the headers and, for
		// what follows the inner IP header, from its pseudo-header (a TCP, UDP or ICMP
		// checksum makes the rest sum to a known value). Superframes would need it per
		// segment, which the kernel's segmentation cannot be asked for from here.
		__s64 rest = inner_l4_sum(&k, &fi);
		if (skb->gso_size || rest < 0 || (k.l3 == 4 && fi.ip_hlen != IP4_LEN)) {
			count(ST_UNCACHEABLE);
			return PASS;
		}
		if (grow(skb, VXLAN6_ROOM, BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP))
			goto error;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		struct ethhdr *eth = data;
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct udphdr *udp = (void *)(ip6 + 1);
		__u32 *vx = (void *)(udp + 1);
		// The UDP header through the inner IP header and the first two bytes after it.
		__u32 udp_off = ETH_LEN + IP6_LEN;
		__u32 l4_off = udp_off + UDP_LEN + VXLAN_LEN + ETH_LEN + (k.l3 == 4 ? IP4_LEN : IP6_LEN);
		if (data + l4_off + 2 > end || (void *)(vx + 2) > end)
			goto error;
		__u32 udp_len = inner_len + VXLAN6_ROOM - ETH_LEN - IP6_LEN;
		outer_eth(eth, ETH_P_IPV6);
		outer_ip6(ip6, v, udp_len, tos, ttl, IPPROTO_UDP);
		udp->source = bpf_htons(v->sport);
		udp->dest = bpf_htons(v->dport);
		udp->len = bpf_htons(udp_len);
		udp->check = 0;
		vxlan_header(vx, v);
		__be32 pseudo[10];
		__builtin_memcpy(&pseudo[0], v->saddr, 16);
		__builtin_memcpy(&pseudo[4], v->daddr, 16);
		pseudo[8] = bpf_htonl(udp_len);
		pseudo[9] = bpf_htonl(IPPROTO_UDP);
		__u64 sum = (__u32)bpf_csum_diff(0, 0, pseudo, sizeof(pseudo), 0);
		__u16 first = *(__u16 *)(data + l4_off);
		if (k.l3 == 4) {
			if (data + udp_off + 52 > end)
				goto error;
			sum += (__u32)bpf_csum_diff(0, 0, data + udp_off, 52, 0);
		} else {
			if (data + udp_off + 72 > end)
				goto error;
			sum += (__u32)bpf_csum_diff(0, 0, data + udp_off, 72, 0);
		}
		sum += (__u16)~first; // the two bytes after the inner IP header, taken out again
		sum += (__u64)rest;
		__u16 check = csum_fold(sum);
		udp->check = check ? check : 0xffff;
	} else if (v->outer_l3 == 4) {
		__u32 room = GRE4_ROOM + (keyed ? GRE_KEY_LEN : 0);
		if (grow_gre(skb, 4, keyed))
			goto error;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		struct ethhdr *eth = data;
		struct iphdr *ip = (void *)(eth + 1);
		__be16 *gre = (void *)(ip + 1);
		if ((void *)(gre + 4) > end)
			goto error;
		outer_eth(eth, ETH_P_IP);
		outer_ip4(ip, v, inner_len + room - ETH_LEN, tos, ttl, df, IPPROTO_GRE);
		gre_header(gre, v);
		if (keyed)
			*(__be32 *)(gre + 2) = bpf_htonl(v->vni);
	} else {
		__u32 room = GRE6_ROOM + (keyed ? GRE_KEY_LEN : 0);
		if (grow_gre(skb, 6, keyed))
			goto error;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		struct ethhdr *eth = data;
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		__be16 *gre = (void *)(ip6 + 1);
		if ((void *)(gre + 4) > end)
			goto error;
		outer_eth(eth, ETH_P_IPV6);
		outer_ip6(ip6, v, inner_len + room - ETH_LEN - IP6_LEN, tos, ttl, IPPROTO_GRE);
		gre_header(gre, v);
		if (keyed)
			*(__be32 *)(gre + 2) = bpf_htonl(v->vni);
	}
	hit(skb, v, &fi, inner_len);
	count(ST_ENCAP_HIT);
	return bpf_redirect_neigh(v->ifindex, 0, 0, 0);
error:
	count(ST_ERROR);
	return PASS;
}

// Reads the outer headers of a VXLAN datagram or GRE packet into `k`. Returns the offset of
// the inner Ethernet frame, or 0 for anything else (the stack and vxtund have it).
static __always_inline __u32 parse_outer(void *data, void *end, struct fp_key *k, __u8 *ecn)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return 0;
	__u32 l4;
	__u8 proto;
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		if ((void *)(ip + 1) > end)
			return 0;
		if (ip->version != 4 || ip->ihl != 5 || (ip->frag_off & bpf_htons(0x3fff)))
			return 0;
		k->outer_l3 = 4;
		__builtin_memcpy(k->outer_src, &ip->saddr, 4);
		__builtin_memcpy(k->outer_dst, &ip->daddr, 4);
		*ecn = ip->tos & ECN_MASK;
		proto = ip->protocol;
		l4 = ETH_LEN + IP4_LEN;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		if ((void *)(ip6 + 1) > end)
			return 0;
		if (ip6->version != 6)
			return 0;
		k->outer_l3 = 6;
		__builtin_memcpy(k->outer_src, &ip6->saddr, 16);
		__builtin_memcpy(k->outer_dst, &ip6->daddr, 16);
		*ecn = (ip6->flow_lbl[0] >> 4) & ECN_MASK;
		proto = ip6->nexthdr;
		l4 = ETH_LEN + IP6_LEN;
	} else {
		return 0;
	}
	if (proto == IPPROTO_UDP) {
		struct udphdr *udp = data + l4;
		__u32 *vx = (void *)(udp + 1);
		if ((void *)(vx + 2) > end)
			return 0;
		__u16 dport = bpf_ntohs(udp->dest);
		if (!bpf_map_lookup_elem(&vxlan_ports, &dport))
			return 0;
		// The I flag and nothing else, as vxtund checks.
		if (vx[0] != bpf_htonl(0x08000000) || (vx[1] & bpf_htonl(0xff)))
			return 0;
		k->dir = DIR_VXLAN;
		k->vni = bpf_ntohl(vx[1]) >> 8;
		k->outer_port = dport;
		return l4 + UDP_LEN + VXLAN_LEN;
	}
	if (proto == IPPROTO_GRE) {
		__be16 *gre = data + l4;
		if ((void *)(gre + 4) > end)
			return 0;
		// Ethernet, without checksum or sequence numbers (vxtund verifies and accepts
		// those), keyed or not.
		__u16 flags = bpf_ntohs(gre[0]);
		if (gre[1] != bpf_htons(ETH_P_TEB_) || (flags != 0 && flags != GRE_KEYED))
			return 0;
		k->dir = DIR_GRE;
		k->outer_port = flags;
		if (flags == GRE_KEYED) {
			k->vni = bpf_ntohl(*(__be32 *)(gre + 2));
			return l4 + GRE_LEN + GRE_KEY_LEN;
		}
		return l4 + GRE_LEN;
	}
	return 0;
}

SEC("classifier")
int vxt_decap(struct __sk_buff *skb)
{
	if ((long)skb->data + 192 > (long)skb->data_end)
		bpf_skb_pull_data(skb, skb->len < 192 ? skb->len : 192);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct fp_key k = {};
	struct frame_info fi = {};
	__u8 outer_ecn = 0;
	__u32 outer = parse_outer(data, end, &k, &outer_ecn);
	// The outer headers' length, one of a few: bounded for the verifier.
	if (outer == 0 || outer > ETH_LEN + IP6_LEN + UDP_LEN + VXLAN_LEN)
		return PASS;
	if (parse_frame(data, end, outer, &k, &fi) < 0) {
		count(ST_UNCACHEABLE);
		return PASS;
	}
	// Several datagrams merged into one (UDP GRO, or a UDP GSO send that crossed a veth) are
	// not one tunnelled superframe: only a superframe's inner IP length spans the whole skb.
	if (skb->gso_size && fi.ip_len != skb->len - fi.l3_off) {
		count(ST_UNCACHEABLE);
		return PASS;
	}
	struct fp_val *v = lookup(&k);
	if (!v || v->action != ACT_DECAP) {
		count(ST_DECAP_MISS);
		return PASS;
	}
	// RFC 6040: CE over a Not-ECT inner packet is dropped and counted by vxtund; CE and
	// ECT(1) over ECT are carried inward.
	__u8 inner_ecn = fi.tos & ECN_MASK;
	__u8 new_ecn = inner_ecn;
	if (outer_ecn == ECN_CE || outer_ecn == ECN_ECT1) {
		if (inner_ecn == 0) {
			if (outer_ecn == ECN_CE) {
				count(ST_ECN_DROP_UP);
				return PASS;
			}
		} else if (outer_ecn == ECN_CE && inner_ecn != ECN_CE) {
			new_ecn = ECN_CE;
		} else if (outer_ecn == ECN_ECT1 && inner_ecn == ECN_ECT0) {
			new_ecn = ECN_ECT1;
		}
	}
	__u32 inner_len = skb->len - outer;
	if (new_ecn != inner_ecn) {
		__u8 new_tos = (fi.tos & ~ECN_MASK) | new_ecn;
		if (k.l3 == 4) {
			struct iphdr *in = data + outer + ETH_LEN;
			if ((void *)(in + 1) > end)
				return PASS;
			__u16 old_word = *(__u16 *)in;
			in->tos = new_tos;
			__u16 new_word = *(__u16 *)in;
			bpf_l3_csum_replace(skb, outer + ETH_LEN + 10, old_word, new_word, 2);
		} else {
			struct ipv6hdr *in6 = data + outer + ETH_LEN;
			if ((void *)(in6 + 1) > end)
				return PASS;
			in6->priority = new_tos >> 4;
			in6->flow_lbl[0] = (in6->flow_lbl[0] & 0x0f) | (new_tos << 4);
		}
	}
	hit(skb, v, &fi, inner_len);
	// The inner Ethernet header over the outer one, then the outer IP and tunnel headers (and
	// the inner Ethernet header's first copy) removed after it.
	struct ethhdr inner_eth;
	if (bpf_skb_load_bytes(skb, outer, &inner_eth, ETH_LEN))
		goto error;
	if (bpf_skb_store_bytes(skb, 0, &inner_eth, ETH_LEN, 0))
		goto error;
	__u64 flags = (k.l3 == 4 ? BPF_F_ADJ_ROOM_DECAP_L3_IPV4 : BPF_F_ADJ_ROOM_DECAP_L3_IPV6) |
		      BPF_F_ADJ_ROOM_FIXED_GSO;
	if (bpf_skb_adjust_room(skb, -(__s32)outer, BPF_ADJ_ROOM_MAC, flags))
		goto error;
	count(ST_DECAP_HIT);
	return bpf_redirect(v->ifindex, BPF_F_INGRESS);
error:
	// The headers may be half rewritten: nothing sane can come of the frame.
	count(ST_ERROR);
	return TC_ACT_SHOT;
}

char _license[] SEC("license") = "Dual MIT/GPL";
