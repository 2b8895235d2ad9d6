// udptnl: experiment for vxtund -- hand the kernel already encapsulated VXLAN superframes
// through a TUN/TAP with UDP tunnel GSO (Linux 6.17+), versus splitting in userspace and
// sending with UDP_SEGMENT.
//
//   udptnl mkdev  -m tun|tap -i IFNAME                 create a persistent device
//   udptnl tnl    -m tun|tap|tunopt -i IFNAME [opts]   write tunnel-GSO superframes into it
//   udptnl udp    [opts]                               baseline: split + UDP_SEGMENT
//   udptnl recv   [-g] [-v] [-T secs]                  VXLAN receiver on :8472
//
// Common sender options: -S outer-src -D outer-dst -s secs -n count -p payload -G gso_size
//   -c (tnl: outer UDP checksum via VIRTIO_NET_HDR_F_UDP_TUNNEL_CSUM; else outer csum 0)
//
// Written from the kernel's uapi (include/uapi/linux/virtio_net.h, if_tun.h, 6.17+) and the
// offsets virtio_net_hdr_tnl_to_skb() checks; the local libc headers predate them, so the few
// constants and the 24-byte header layout are spelled out here.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* if_tun.h (6.17+) */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif
#ifndef TUN_F_UDP_TUNNEL_GSO
#define TUN_F_UDP_TUNNEL_GSO 0x080
#define TUN_F_UDP_TUNNEL_GSO_CSUM 0x100
#endif
#ifndef TUNGETFEATURES
#define TUNGETFEATURES _IOR('T', 207, unsigned int)
#endif
/* virtio_net.h */
#define VNET_F_NEEDS_CSUM 1
#define VNET_F_UDP_TUNNEL_CSUM 8
#define VNET_GSO_TCPV4 1
#define VNET_GSO_UDP_TUNNEL_IPV4 0x20

/* struct virtio_net_hdr_v1_hash_tunnel, 24 bytes, little endian (TUN default on x86) */
struct vnet_tnl_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
	uint16_t hash_value_lo, hash_value_hi;
	uint16_t hash_report, padding;
	uint16_t outer_th_offset;
	uint16_t inner_nh_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct vnet_tnl_hdr) == 24, "vnet hdr");

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define VXLAN_PORT 8472
#define VNI 42
#define ETH_HL 14
#define IP_HL 20
#define UDP_HL 8
#define VXLAN_HL 8
#define TCP_HL 32 /* 20 + NOP NOP TS */
#define INNER_HL (ETH_HL + IP_HL + TCP_HL)           /* 66 */
#define VX_HL (VXLAN_HL + INNER_HL)                  /* 74: UDP payload headers */
#define ISN 1000000u

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double cpu_self(double *user, double *sys)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6;
	*sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
	return *user + *sys;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* ---- Internet checksum: 32-bit words into 64-bit accumulators (as vxtund's wire::checksum) */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t n)
{
	uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
	while (n >= 32) {
		uint32_t w[8];
		memcpy(w, p, 32);
		a0 += (uint64_t)w[0] + w[4];
		a1 += (uint64_t)w[1] + w[5];
		a2 += (uint64_t)w[2] + w[6];
		a3 += (uint64_t)w[3] + w[7];
		p += 32;
		n -= 32;
	}
	unsigned __int128 t = (unsigned __int128)a0 + a1 + a2 + a3;
	while (n >= 2) {
		uint16_t w;
		memcpy(&w, p, 2);
		t += w;
		p += 2;
		n -= 2;
	}
	if (n) {
		uint8_t b[2] = {p[0], 0};
		uint16_t w;
		memcpy(&w, b, 2);
		t += w;
	}
	while (t >> 16)
		t = (t & 0xffff) + (t >> 16);
	/* native order folded sum; keep everything native, fold at the end */
	uint64_t s = sum + (uint64_t)t;
	return s;
}

static uint16_t csum_fold(uint64_t s) /* returns native-order folded sum, not complemented */
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint16_t ip_csum(const uint8_t *h, int len) { return ~csum_fold(csum_add(0, h, len)); }
/* checksums are computed on native-order words: store them as they are (RFC 1071 2.B) */
static void store_csum(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/* pseudo header sum (native order words, like the data) */
static uint64_t pseudo(uint32_t saddr, uint32_t daddr, uint8_t proto, uint16_t len)
{
	uint8_t ph[12];
	memcpy(ph, &saddr, 4);
	memcpy(ph + 4, &daddr, 4);
	ph[8] = 0;
	ph[9] = proto;
	ph[10] = len >> 8;
	ph[11] = len & 0xff;
	return csum_add(0, ph, 12);
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, v & 0xffff); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

static uint8_t pattern(uint32_t off) { return (uint8_t)(off * 7 + 13); }

/* IPv4 header (20 bytes, or 20 + optlen with NOP options) */
static int build_ip(uint8_t *p, int optlen, uint16_t tot, uint16_t id, int df, uint8_t proto,
		    uint32_t s, uint32_t d)
{
	int hl = IP_HL + optlen;
	memset(p, 0, hl);
	p[0] = 0x40 | (hl / 4);
	put16(p + 2, tot);
	put16(p + 4, id);
	p[6] = df ? 0x40 : 0;
	p[8] = 64;
	p[9] = proto;
	memcpy(p + 12, &s, 4);
	memcpy(p + 16, &d, 4);
	memset(p + 20, 1, optlen); /* NOPs */
	store_csum(p + 10, ip_csum(p, hl));
	return hl;
}

static void set_ip_id(uint8_t *p, uint16_t id)
{
	int hl = (p[0] & 15) * 4;
	put16(p + 4, id);
	put16(p + 10, 0);
	store_csum(p + 10, ip_csum(p, hl));
}

static const uint8_t inner_dmac[6] = {0x02, 0xaa, 0, 0, 0, 2};
static const uint8_t inner_smac[6] = {0x02, 0xaa, 0, 0, 0, 1};
static uint32_t inner_src, inner_dst;

/* VXLAN header + inner eth + ip + tcp (checksum field left 0). Returns 74. */
static int build_vx_headers(uint8_t *p, uint16_t inner_tot, uint32_t seq, uint8_t tcpflags)
{
	memset(p, 0, VX_HL);
	p[0] = 0x08;
	p[4] = (VNI >> 16) & 0xff;
	p[5] = (VNI >> 8) & 0xff;
	p[6] = VNI & 0xff;
	uint8_t *e = p + VXLAN_HL;
	memcpy(e, inner_dmac, 6);
	memcpy(e + 6, inner_smac, 6);
	put16(e + 12, 0x0800);
	build_ip(e + ETH_HL, 0, inner_tot, 1, 1, 6, inner_src, inner_dst);
	uint8_t *t = e + ETH_HL + IP_HL;
	put16(t, 5001);
	put16(t + 2, 40000);
	put32(t + 4, seq);
	put32(t + 8, 777);
	t[12] = (TCP_HL / 4) << 4;
	t[13] = tcpflags;
	put16(t + 14, 4096);
	t[20] = 1;
	t[21] = 1;
	t[22] = 8;
	t[23] = 10;
	put32(t + 24, 12345);
	put32(t + 28, 54321);
	return VX_HL;
}

struct opts {
	const char *mode, *ifname, *src, *dst;
	double secs;
	long count;
	int payload, gso, csum, gro, verify;
	double maxsecs;
	int mtu;
	int wait_us;
	int idle;
};

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

/* ------------------------------------------------------------------ device */
static int tun_open(const char *name, int tap, int persist_only)
{
	int fd = open("/dev/net/tun", O_RDWR);
	if (fd < 0)
		die("open /dev/net/tun");
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	ifr.ifr_flags = (tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		die("TUNSETIFF");
	unsigned feat = 0;
	if (ioctl(fd, TUNGETFEATURES, &feat) == 0)
		fprintf(stderr, "TUNGETFEATURES=0x%x\n", feat);
	int sz = 24;
	if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0)
		die("TUNSETVNETHDRSZ");
	unsigned off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_UDP_TUNNEL_GSO | TUN_F_UDP_TUNNEL_GSO_CSUM;
	if (ioctl(fd, TUNSETOFFLOAD, off) < 0)
		die("TUNSETOFFLOAD(CSUM|TSO4|UDP_TUNNEL_GSO|UDP_TUNNEL_GSO_CSUM)");
	if (persist_only) {
		if (ioctl(fd, TUNSETPERSIST, 1) < 0)
			die("TUNSETPERSIST");
		close(fd);
		return -1;
	}
	return fd;
}

static void get_mac(const char *name, uint8_t mac[6])
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0)
		die("SIOCGIFHWADDR");
	memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(s);
}

static void report_send(const char *what, long frames, long long bytes, double t0, double t1,
			long errs, int lasterr, long calls)
{
	double u, s;
	double c = cpu_self(&u, &s);
	double el = t1 - t0;
	printf("%s frames=%ld payload_bytes=%lld secs=%.3f send_gbps=%.3f cpu_user=%.3f "
	       "cpu_sys=%.3f cpu_total=%.3f cpu_s_per_GB=%.3f syscalls=%ld errors=%ld lasterr=%s\n",
	       what, frames, bytes, el, bytes * 8 / el / 1e9, u, s, c,
	       bytes ? c / (bytes / 1e9) : 0, calls, errs, errs ? strerror(lasterr) : "-");
	fflush(stdout);
}

/* ------------------------------------------------------------- tunnel GSO writer */
static int run_tnl(struct opts *o)
{
	int tap = !strcmp(o->mode, "tap");
	int optlen = !strcmp(o->mode, "tunopt") ? 16 : 0; /* pad outer IPv4 with 16 NOPs */
	int fd = tun_open(o->ifname, tap, 0);
	uint32_t osrc = inet_addr(o->src), odst = inet_addr(o->dst);
	int l2 = tap ? ETH_HL : 0;
	int oip = IP_HL + optlen;
	int outer_th = l2 + oip;
	int inner_nh = outer_th + UDP_HL + VXLAN_HL + ETH_HL;
	int inner_th = inner_nh + IP_HL;
	int hdrs = inner_th + TCP_HL;
	int gso = o->gso ? o->gso : o->mtu - (oip + UDP_HL + VX_HL);
	int P = o->payload;
	size_t len = sizeof(struct vnet_tnl_hdr) + hdrs + P;
	uint8_t *buf = aligned_alloc(64, (len + 63) & ~63UL);
	memset(buf, 0, len);

	struct vnet_tnl_hdr *vh = (void *)buf;
	vh->flags = VNET_F_NEEDS_CSUM | (o->csum ? VNET_F_UDP_TUNNEL_CSUM : 0);
	vh->gso_type = VNET_GSO_TCPV4 | VNET_GSO_UDP_TUNNEL_IPV4;
	vh->hdr_len = hdrs;
	vh->gso_size = gso;
	vh->csum_start = inner_th;
	vh->csum_offset = 16;
	vh->outer_th_offset = outer_th;
	vh->inner_nh_offset = inner_nh;

	uint8_t *f = buf + sizeof(*vh);
	if (tap) {
		get_mac(o->ifname, f); /* dst: the TAP itself, so the stack takes it as PACKET_HOST */
		uint8_t smac[6] = {0x02, 0xbb, 0, 0, 0, 1};
		memcpy(f + 6, smac, 6);
		put16(f + 12, 0x0800);
	}
	uint8_t *ip = f + l2;
	uint16_t udp_len = UDP_HL + VX_HL + P;
	build_ip(ip, optlen, oip + udp_len, 1, 0, 17, osrc, odst);
	uint8_t *uh = ip + oip;
	put16(uh, 50000);
	put16(uh + 2, VXLAN_PORT);
	put16(uh + 4, udp_len);
	/* outer UDP checksum: with UDP_TUNNEL_CSUM, the pseudo-header sum over the superframe's UDP
	 * length (the seed __skb_udp_tunnel_segment() adjusts per segment); else 0 (no checksum) */
	store_csum(uh + 6, o->csum ? csum_fold(pseudo(osrc, odst, 17, udp_len)) : 0);
	uint8_t *vx = uh + UDP_HL;
	uint16_t inner_tot = IP_HL + TCP_HL + P;
	build_vx_headers(vx, inner_tot, ISN, 0x18 /* PSH|ACK */);
	uint8_t *iip = vx + VXLAN_HL + ETH_HL;
	uint8_t *th = iip + IP_HL;
	/* inner TCP: partial checksum = pseudo-header sum over the superframe's TCP length */
	{
		uint16_t v = csum_fold(pseudo(inner_src, inner_dst, 6, TCP_HL + P));
		memcpy(th + 16, &v, 2);
	}
	for (int i = 0; i < P; i++)
		th[TCP_HL + i] = pattern(i);

	int nseg = (P + gso - 1) / gso;
	fprintf(stderr, "tnl: mode=%s write_len=%zu outer_th=%d inner_nh=%d csum_start=%d gso=%d segs=%d "
		"seg_wire=%d csum=%d\n", o->mode, len, outer_th, inner_nh, inner_th, gso, nseg,
		oip + UDP_HL + VX_HL + gso, o->csum);

	uint32_t seq = ISN;
	uint16_t id_in = 1, id_out = 1;
	long frames = 0, errs = 0, calls = 0;
	int lasterr = 0;
	long long bytes = 0;
	double t0 = now(), tend = t0 + o->secs;
	while (!stop && (o->count ? frames < o->count : 1)) {
		put32(th + 4, seq);
		set_ip_id(iip, id_in);
		set_ip_id(ip, id_out);
		ssize_t w = write(fd, buf, len);
		calls++;
		if (w != (ssize_t)len) {
			errs++;
			lasterr = errno;
			if (errs < 3)
				fprintf(stderr, "write: %zd %s\n", w, strerror(errno));
			if (errs > 1000 && frames == 0)
				break;
		} else {
			frames++;
			bytes += P;
			seq += P;
			id_in += nseg;
			id_out += nseg;
		}
		if (!o->count && (frames & 15) == 0 && now() >= tend)
			break;
		if (o->wait_us)
			usleep(o->wait_us);
	}
	double t1 = now();
	report_send("tnl", frames, bytes, t0, t1, errs, lasterr, calls);
	close(fd);
	return errs && !frames;
}

/* ------------------------------------------------------------- baseline: split + UDP GSO */
static int run_udp(struct opts *o)
{
	uint32_t osrc = inet_addr(o->src), odst = inet_addr(o->dst);
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = osrc};
	struct sockaddr_in ra = {.sin_family = AF_INET, .sin_port = htons(VXLAN_PORT),
				 .sin_addr.s_addr = odst};
	if (bind(s, (void *)&la, sizeof(la)) < 0)
		die("bind");
	/* unconnected, as vxtund's underlay socket: every message names its peer */
	int sndbuf = 4 << 20;
	setsockopt(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	int gso = o->gso ? o->gso : o->mtu - (IP_HL + UDP_HL + VX_HL);
	int P = o->payload;
	int nseg = (P + gso - 1) / gso;
	int dgram = VX_HL + gso;
	/* the superframe as vxtund would have it from the TAP: inner headers + payload */
	uint8_t *super = aligned_alloc(64, (VX_HL + P + 63) & ~63UL);
	build_vx_headers(super, IP_HL + TCP_HL + P, ISN, 0x18);
	for (int i = 0; i < P; i++)
		super[VX_HL + i] = pattern(i);
	uint8_t *out = aligned_alloc(64, ((size_t)nseg * dgram + 63) & ~63UL);
	int per_msg = 65000 / dgram; /* vxtund's GSO_MAX_BYTES */
	if (per_msg > 64)
		per_msg = 64;
	int nmsg = (nseg + per_msg - 1) / per_msg;
	struct mmsghdr *mm = calloc(nmsg, sizeof(*mm));
	struct iovec *iov = calloc(nmsg, sizeof(*iov));
	char (*ctl)[CMSG_SPACE(sizeof(uint16_t))] = calloc(nmsg, sizeof(*ctl));
	fprintf(stderr, "udp: gso=%d segs=%d datagram=%d msgs/superframe=%d\n", gso, nseg, dgram, nmsg);

	uint32_t seq = ISN;
	uint16_t id = 1;
	long frames = 0, errs = 0, calls = 0;
	int lasterr = 0;
	long long bytes = 0;
	double t0 = now(), tend = t0 + o->secs;
	while (!stop && (o->count ? frames < o->count : 1)) {
		/* split: copy headers + chunk, fix IP len/id/csum, TCP seq/flags, full TCP checksum */
		size_t off = 0;
		for (int i = 0; i < nseg; i++) {
			int cl = (i + 1 < nseg) ? gso : P - i * gso;
			uint8_t *d = out + off;
			memcpy(d, super, VX_HL);
			memcpy(d + VX_HL, super + VX_HL + i * gso, cl);
			uint8_t *iip = d + VXLAN_HL + ETH_HL, *th = iip + IP_HL;
			put16(iip + 2, IP_HL + TCP_HL + cl);
			put16(iip + 4, id + i);
			put16(iip + 10, 0);
			store_csum(iip + 10, ip_csum(iip, IP_HL));
			put32(th + 4, seq + i * gso);
			if (i + 1 < nseg)
				th[13] &= ~0x09; /* FIN, PSH on the last only */
			put16(th + 16, 0);
			uint64_t sum = pseudo(inner_src, inner_dst, 6, TCP_HL + cl);
			sum = csum_add(sum, th, TCP_HL + cl);
			uint16_t c = ~csum_fold(sum);
			memcpy(th + 16, &c, 2);
			off += VX_HL + cl;
		}
		/* one sendmmsg: messages of up to per_msg datagrams, UDP_SEGMENT = datagram size */
		for (int m = 0; m < nmsg; m++) {
			int first = m * per_msg, last = first + per_msg < nseg ? first + per_msg : nseg;
			size_t a = (size_t)first * dgram;
			size_t b = last == nseg ? off : (size_t)last * dgram;
			iov[m].iov_base = out + a;
			iov[m].iov_len = b - a;
			memset(&mm[m], 0, sizeof(mm[m]));
			mm[m].msg_hdr.msg_iov = &iov[m];
			mm[m].msg_hdr.msg_iovlen = 1;
			mm[m].msg_hdr.msg_name = &ra;
			mm[m].msg_hdr.msg_namelen = sizeof(ra);
			if (last - first > 1) {
				mm[m].msg_hdr.msg_control = ctl[m];
				mm[m].msg_hdr.msg_controllen = sizeof(ctl[m]);
				struct cmsghdr *cm = CMSG_FIRSTHDR(&mm[m].msg_hdr);
				cm->cmsg_level = SOL_UDP;
				cm->cmsg_type = UDP_SEGMENT;
				cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
				uint16_t g = dgram;
				memcpy(CMSG_DATA(cm), &g, 2);
			}
		}
		int r = sendmmsg(s, mm, nmsg, 0);
		calls++;
		if (r != nmsg) {
			errs++;
			lasterr = errno;
			if (errs < 3)
				fprintf(stderr, "sendmmsg: %d %s\n", r, strerror(errno));
		} else {
			frames++;
			bytes += P;
			seq += P;
			id += nseg;
		}
		if (!o->count && (frames & 15) == 0 && now() >= tend)
			break;
		if (o->wait_us)
			usleep(o->wait_us);
	}
	double t1 = now();
	report_send("udp", frames, bytes, t0, t1, errs, lasterr, calls);
	return 0;
}

/* ------------------------------------------------------------- receiver */
struct rstats {
	long dgrams, recvd_bufs, gro_bufs, bad_vxlan, bad_inner, ipcsum_bad, tcpcsum_bad,
	    len_mismatch, oversize, seq_ok, seq_err, payload_bad, psh_mid;
	long long payload;
	int maxbuf, max_inner_payload, gro_size_seen;
	uint32_t expect;
	int have_expect;
	struct sockaddr_in from;
};

static void check_one(struct rstats *st, const uint8_t *p, int n, int verify, int P)
{
	st->dgrams++;
	if (n < VX_HL || p[0] != 0x08 || p[4] != ((VNI >> 16) & 0xff) || p[5] != ((VNI >> 8) & 0xff) ||
	    p[6] != (VNI & 0xff)) {
		st->bad_vxlan++;
		return;
	}
	const uint8_t *e = p + VXLAN_HL, *ip = e + ETH_HL;
	if (get16(e + 12) != 0x0800 || (ip[0] >> 4) != 4 || ip[9] != 6) {
		st->bad_inner++;
		return;
	}
	int ihl = (ip[0] & 15) * 4;
	int tot = get16(ip + 2);
	int avail = n - VXLAN_HL - ETH_HL;
	if (tot != avail)
		st->len_mismatch++;
	if (tot > avail)
		tot = avail;
	const uint8_t *th = ip + ihl;
	int doff = (th[12] >> 4) * 4;
	int pl = tot - ihl - doff;
	if (pl < 0) {
		st->bad_inner++;
		return;
	}
	if (pl > st->max_inner_payload)
		st->max_inner_payload = pl;
	if (verify) {
		if (csum_fold(csum_add(0, ip, ihl)) != 0xffff)
			st->ipcsum_bad++;
		uint32_t s, d;
		memcpy(&s, ip + 12, 4);
		memcpy(&d, ip + 16, 4);
		uint64_t sum = pseudo(s, d, 6, tot - ihl);
		sum = csum_add(sum, th, tot - ihl);
		if (csum_fold(sum) != 0xffff)
			st->tcpcsum_bad++;
		uint32_t off = (get32(th + 4) - ISN) % (uint32_t)P;
		for (int i = 0; i < pl; i++)
			if (th[doff + i] != pattern(off + i)) {
				st->payload_bad++;
				break;
			}
		int last = ((off + pl) % P) == 0;
		if ((th[13] & 0x08) && !last)
			st->psh_mid++;
	}
	uint32_t seq = get32(th + 4);
	if (st->have_expect) {
		if (seq == st->expect)
			st->seq_ok++;
		else
			st->seq_err++;
	}
	st->have_expect = 1;
	st->expect = seq + pl;
	st->payload += pl;
}

static int run_recv(struct opts *o)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = htons(VXLAN_PORT),
				 .sin_addr.s_addr = o->dst ? inet_addr(o->dst) : INADDR_ANY};
	int one = 1, rcv = o->idle ? 256 << 10 : 32 << 20;
	setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
	if (bind(s, (void *)&la, sizeof(la)) < 0)
		die("bind");
	if (o->gro && setsockopt(s, SOL_UDP, UDP_GRO, &one, sizeof(one)) < 0)
		die("UDP_GRO");
	if (o->idle) { /* sink: a bound socket nobody reads; once full, B drops at enqueue */
		printf("recv: ready idle\n");
		fflush(stdout);
		double t0 = now();
		while (!stop && now() - t0 < o->maxsecs)
			usleep(100000);
		return 0;
	}
	struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	enum { B = 32, BS = 65536 + 4096 };
	uint8_t *bufs = malloc((size_t)B * BS);
	struct mmsghdr mm[B];
	struct iovec iov[B];
	char ctl[B][CMSG_SPACE(sizeof(int)) * 2];
	struct sockaddr_in from[B];
	struct rstats st = {0};
	double tfirst = 0, tlast = 0, tstart = now();
	double cu0, cs0;
	cpu_self(&cu0, &cs0);
	printf("recv: ready gro=%d verify=%d\n", o->gro, o->verify);
	fflush(stdout);
	while (!stop) {
		for (int i = 0; i < B; i++) {
			iov[i].iov_base = bufs + (size_t)i * BS;
			iov[i].iov_len = BS;
			memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_control = ctl[i];
			mm[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
			mm[i].msg_hdr.msg_name = &from[i];
			mm[i].msg_hdr.msg_namelen = sizeof(from[i]);
		}
		int r = recvmmsg(s, mm, B, MSG_WAITFORONE, NULL);
		double t = now();
		if (r <= 0) {
			if (tfirst && t - tlast > 1.0)
				break;
			if (!tfirst && o->maxsecs && t - tstart > o->maxsecs)
				break;
			continue;
		}
		if (!tfirst)
			tfirst = t;
		tlast = t;
		for (int i = 0; i < r; i++) {
			int n = mm[i].msg_len;
			uint8_t *p = bufs + (size_t)i * BS;
			st.recvd_bufs++;
			if (st.recvd_bufs == 1)
				st.from = from[i];
			if (n > st.maxbuf)
				st.maxbuf = n;
			int gsz = 0;
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&mm[i].msg_hdr); c;
			     c = CMSG_NXTHDR(&mm[i].msg_hdr, c))
				if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO)
					memcpy(&gsz, CMSG_DATA(c), sizeof(int));
			if (gsz > 0 && gsz < n) {
				st.gro_bufs++;
				st.gro_size_seen = gsz;
				for (int off = 0; off < n; off += gsz)
					check_one(&st, p + off, n - off < gsz ? n - off : gsz, o->verify,
						  o->payload);
			} else {
				if (gsz > 0)
					st.gro_size_seen = gsz;
				check_one(&st, p, n, o->verify, o->payload);
			}
		}
	}
	double u, sy;
	cpu_self(&u, &sy);
	u -= cu0;
	sy -= cs0;
	double el = tlast - tfirst;
	char fa[32];
	inet_ntop(AF_INET, &st.from.sin_addr, fa, sizeof(fa));
	printf("recv gro=%d verify=%d bufs=%ld gro_bufs=%ld gro_size=%d max_buf=%d dgrams=%ld "
	       "payload_bytes=%lld secs=%.3f recv_gbps=%.3f max_inner_payload=%d bad_vxlan=%ld "
	       "bad_inner=%ld len_mismatch=%ld ipcsum_bad=%ld tcpcsum_bad=%ld payload_bad=%ld "
	       "psh_mid=%ld seq_ok=%ld seq_err=%ld from=%s:%d cpu_user=%.3f cpu_sys=%.3f\n",
	       o->gro, o->verify, st.recvd_bufs, st.gro_bufs, st.gro_size_seen, st.maxbuf, st.dgrams,
	       st.payload, el, el > 0 ? st.payload * 8 / el / 1e9 : 0, st.max_inner_payload,
	       st.bad_vxlan, st.bad_inner, st.len_mismatch, st.ipcsum_bad, st.tcpcsum_bad,
	       st.payload_bad, st.psh_mid, st.seq_ok, st.seq_err, fa, ntohs(st.from.sin_port), u, sy);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s mkdev|tnl|udp|recv [opts]\n", argv[0]);
		return 2;
	}
	const char *cmd = argv[1];
	struct opts o = {.mode = "tap", .ifname = "ut0", .src = "10.201.0.1", .dst = "10.201.0.2",
			 .secs = 3, .payload = 64000, .mtu = 1500};
	int c;
	optind = 2;
	while ((c = getopt(argc, argv, "m:i:S:D:s:n:p:G:cgvT:M:w:z")) != -1) {
		switch (c) {
		case 'm': o.mode = optarg; break;
		case 'i': o.ifname = optarg; break;
		case 'S': o.src = optarg; break;
		case 'D': o.dst = optarg; break;
		case 's': o.secs = atof(optarg); break;
		case 'n': o.count = atol(optarg); break;
		case 'p': o.payload = atoi(optarg); break;
		case 'G': o.gso = atoi(optarg); break;
		case 'c': o.csum = 1; break;
		case 'g': o.gro = 1; break;
		case 'v': o.verify = 1; break;
		case 'T': o.maxsecs = atof(optarg); break;
		case 'M': o.mtu = atoi(optarg); break;
		case 'w': o.wait_us = atoi(optarg); break;
		case 'z': o.idle = 1; break;
		default: return 2;
		}
	}
	inner_src = inet_addr("192.168.42.1");
	inner_dst = inet_addr("192.168.42.2");
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	if (!strcmp(cmd, "mkdev")) {
		tun_open(o.ifname, !strcmp(o.mode, "tap"), 1);
		return 0;
	}
	if (!strcmp(cmd, "tnl"))
		return run_tnl(&o);
	if (!strcmp(cmd, "udp"))
		return run_udp(&o);
	if (!strcmp(cmd, "recv"))
		return run_recv(&o);
	fprintf(stderr, "unknown command %s\n", cmd);
	return 2;
}
