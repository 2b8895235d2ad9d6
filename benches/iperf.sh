#!/usr/bin/env bash
# Throughput of vxtund against the kernel's vxlan and the userspace L2 tunnels people use
# instead, all measured in the same run.
#
#   benches/iperf.sh                 (as root; DURATION=10 RUNS=3 by default)
#   DURATION=20 RUNS=5 PATHS="kernel vxtund" benches/iperf.sh
#   VARIANTS="q1:queues=1 q2:queues=2" PATHS="kernel vxtund" benches/iperf.sh
#   VARIANTS="user:fast_path=off" PATHS="kernel vxtund vxtund_user bound" benches/iperf.sh
#
# Each path is two network namespaces joined by a veth underlay (MTU 1500, 10.201.0.0/24) with
# an L2 tunnel between them (10.99.0.0/24, MTU 1450; 1458 for GRE with its key):
#   veth          no tunnel: the underlay itself (server on 10.201.0.2)
#   kernel        the kernel's vxlan device (id 42, dstport 8472)
#   vxtund        vxtund over VXLAN, offloads on, the kernel fast path where it loads (the default)
#   vxtund_nooff  vxtund over VXLAN with device.offload and underlay.offload off
#   gre           vxtund over GRE (key 42), offloads on
#   tinc          tinc 1.0 in switch mode, Cipher/Digest none, no compression
#   openvpn       OpenVPN 2.6 --dev tap, --cipher none --auth none
#   bound         benches/relay_bound.rs: a copy-only VXLAN relay on vxtund's own I/O and
#                 offload code, no switch (one queue), the bound of vxtund's design for a flow
#   bound_poll    the same relay polling 200 µs before it sleeps (as busy_poll_us = 200)
#   vxtund_NAME   the vxtund path with the settings of VARIANTS' NAME (below)
# VARIANTS compares vxtund configured differently in the same run: space-separated NAME:SPEC,
# SPEC a comma-separated list of key=value settings; each NAME adds a path vxtund_NAME, the
# vxtund path with those lines in its config (queues, worker_threads, batch_wait_us, busy_poll_us, txqueuelen, offload, fast_path and fast_path_entries go
# into [device], inner_checksum and flow_spread into [underlay]; numbers and true/false are written bare,
# anything else quoted; a setting replaces the path's own line for that key).
# iperf3 runs TCP one stream each way, TCP four streams, UDP with 1400-byte datagrams at full
# speed (udp), and UDP paced at 80 % of the kernel's vxlan datagram rate (udp80: can the path
# carry that rate without loss? the rate is the median of the kernel's udp results measured so
# far in this invocation, so udp80 needs the kernel path and the udp test), RUNS times each
# (median reported, paths interleaved). The UDP tests give both ends a 4 MiB socket buffer
# (iperf3 -w; the default 208 KiB overflows on bursts on every path, the kernel's too); the
# script raises net.core.rmem_max/wmem_max to 4 MiB for the run if they are lower, and puts
# them back at the end. The script prints a Markdown table with the ratio to the kernel's
# vxlan, the CPU the tunnel's two processes used, and vxtund's memory; with the gre path, also
# GRE's ratio to VXLAN and the GRE ceiling of benches/gre_ceiling.rs (what vxtund's raw sockets
# alone carry on this machine). For every path and test the table also gives the CPU seconds
# spent per Gbit carried (CPU-cores per Gbit/s): the tunnel's own processes', and the whole
# machine's from /proc/stat (user, nice, system, irq, softirq and steal over the test), the only
# fair figure for the kernel's vxlan, which has no process, and one that counts iperf3 and the
# softirq work on every path (and anything else running: measure on a quiet machine); and the
# tunnel processes' wake-ups (voluntary context switches of all their threads: vxtund's data
# path sleeps in poll(), so each is one wake-up) per second and per Gbit.
# Then, per path: ping every 1 ms while one TCP stream runs (latency under load, LATENCY=0
# skips), and the rate of new TCP connections (benches/conn_rate.py, CONNS=0 skips).
# A second table says where the udp test's datagrams were lost, for every path, in the run of
# median loss, as % of the datagrams sent: counters read inside each namespace (ip netns exec:
# /proc/net/snmp, /proc/net/udp and raw, ip -s link, tc -s qdisc, and vxtunctl show beside
# $BIN for vxtund) just before and just after that test, the differences put in places:
#   sending TAP / device   tx_dropped and qdisc drops of vxt0 (vx0, tinc0, tap0) at the sender:
#                          for a TAP, its ring was full because the daemon did not read it fast
#                          enough
#   sending vxtund         frames vxtund read from the TAP but did not send (drops, failed sends)
#   underlay veth          the veth's drops (the peer's backlog full)
#   tunnel sockets         datagrams lost at the receiver's tunnel sockets (port 8472, 655, 1194;
#                          GRE: raw protocol 47), from the sockets' drop counters; for vxtund,
#                          frames one vxtund sent less those the other received, less veth drops
#                          (with GRO a socket's drop counter counts batches, not datagrams)
#   receiving vxtund       frames vxtund received but did not write to its TAP
#   receiving TAP / device rx_dropped at the receiver (its backlog full)
#   receiving iperf3 socket  the receiving namespace's UDP InErrors less the tunnel's UDP sockets'
#                          drops (iperf3's socket, gone when the test ends, had its buffer full)
#   late                   UDP NoPorts at the receiver: datagrams that came after iperf3 closed
#   other                  the loss none of these counted
# The loss there is sent less received, a little more than iperf3's, which leaves out the last
# datagrams, which it never saw. Every process is stopped by PID and every namespace removed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
PATHS=${PATHS:-"veth kernel vxtund vxtund_nooff gre tinc openvpn"}
TESTS=${TESTS:-"tcp tcp_rev tcp4 udp udp80"}
VARIANTS=${VARIANTS:-}
[ "$(id -u)" = 0 ] || { echo "iperf.sh: needs root" >&2; exit 1; }

variant_section() { # variant_section KEY: the config section a variant's KEY goes into
    case "$1" in
        queues | batch_wait_us | busy_poll_us | offload | txqueuelen | worker_threads | fast_path | fast_path_entries) echo device ;;
        inner_checksum | flow_spread) echo underlay ;;
        *) return 1 ;;
    esac
}
declare -A variant=() # path vxtund_NAME -> its SPEC
read -r -a variant_list <<<"$VARIANTS"
for v in "${variant_list[@]}"; do
    name=${v%%:*} spec=${v#*:}
    [[ "$v" == *:?* && "$name" =~ ^[A-Za-z0-9_]+$ ]] ||
        { echo "iperf.sh: variant '$v' is not NAME:key=value,..." >&2; exit 1; }
    [[ " $PATHS " != *" vxtund_$name "* ]] ||
        { echo "iperf.sh: variant '$name': PATHS already has a path vxtund_$name" >&2; exit 1; }
    IFS=, read -r -a settings <<<"$spec"
    for kv in "${settings[@]}"; do
        [[ "$kv" =~ ^[a-z_]+=[A-Za-z0-9._+-]+$ ]] ||
            { echo "iperf.sh: variant '$name': '$kv' is not key=value" >&2; exit 1; }
        variant_section "${kv%%=*}" >/dev/null ||
            { echo "iperf.sh: variant '$name': unknown key '${kv%%=*}' (see variant_section)" >&2; exit 1; }
    done
    variant[vxtund_$name]=$spec
    PATHS+=" vxtund_$name"
done
if [[ " $TESTS " == *" udp80 "* ]]; then
    [[ " $PATHS " == *" kernel "* && " $TESTS " == *" udp "*udp80* ]] ||
        { echo "iperf.sh: udp80 needs the kernel path and the udp test before it" >&2; exit 1; }
fi
"$here/scripts/setup.sh"
for tool in tincd openvpn; do
    command -v "$tool" >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q tinc openvpn >/dev/null
done
bin=${BIN:-$here/target/release/vxtund}
ctl=$(dirname "$bin")/vxtunctl # for vxtund's own counters in the UDP loss breakdown, if there
if [ -z "${BIN:-}" ]; then (cd "$here" && cargo build --release -q); fi
p=vxb$$
tmp=$(mktemp -d)
cleanup() {
    for f in "$tmp"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    sleep 0.5
    for f in "$tmp"/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true; done
    for ns in $(ip netns list | awk '{print $1}' | grep "^$p-" || true); do ip netns del "$ns"; done
    for f in "$tmp"/*.sysctl; do
        [ -f "$f" ] && sysctl -q -w "net.core.$(basename "$f" .sysctl)=$(cat "$f")" || true
    done
    [ -n "${KEEP:-}" ] && cp -r "$tmp" "$KEEP"
    rm -rf "$tmp"
}
trap cleanup EXIT
# iperf3 -w 4M needs socket buffers that large; raised for the run, restored by cleanup.
for limit in rmem_max wmem_max; do
    old=$(sysctl -n "net.core.$limit")
    if [ "$old" -lt 4194304 ]; then
        echo "$old" >"$tmp/$limit.sysctl"
        sysctl -q -w "net.core.$limit=4194304"
    fi
done

pair() { # pair NAME: namespaces NAME-a and NAME-b joined by ul0 <-> ul0, 10.201.0.1 / .2
    ip netns add "$p-$1-a"; ip netns add "$p-$1-b"
    ip link add ul0 netns "$p-$1-a" type veth peer name ul0 netns "$p-$1-b"
    local i=1 s
    for s in a b; do
        ip -n "$p-$1-$s" link set lo up
        ip -n "$p-$1-$s" addr add "10.201.0.$i/24" dev ul0
        ip -n "$p-$1-$s" link set ul0 up
        i=$((i + 1))
    done
}

wait_ready() { # wait_ready FILE [LINE]: until the daemon printed its ready line
    local line=${2:-vxtund ready}
    for _ in $(seq 100); do grep -q "$line" "$1" 2>/dev/null && return; sleep 0.1; done
    echo "no \"$line\" from $1:" >&2; cat "${1%.out}.log" >&2; exit 1
}

setup_veth() { pair veth; }

setup_kernel() {
    pair kernel
    local i s
    for i in 1 2; do
        s=$([ $i = 1 ] && echo a || echo b)
        ip -n "$p-kernel-$s" link add vx0 type vxlan id 42 dstport 8472 \
            local "10.201.0.$i" remote "10.201.0.$((3 - i))" dev ul0
        ip -n "$p-kernel-$s" addr add "10.99.0.$i/24" dev vx0
        ip -n "$p-kernel-$s" link set vx0 up
    done
}

toml_set() { # toml_set FILE SECTION KEY VALUE: KEY = VALUE in [SECTION], replacing KEY's line
    awk -v head="[$2]" -v key="$3" -v value="$4" '
        $0 == head { print; print key " = " value; within = 1; next }
        /^\[/ { within = 0 }
        within && $1 == key && $2 == "=" { next }
        { print }' "$1" >"$1.new"
    mv "$1.new" "$1"
}

toml_value() { # numbers and booleans bare, anything else quoted
    if [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?$ || "$1" == true || "$1" == false ]]; then
        echo "$1"
    else
        echo "\"$1\""
    fi
}

vxtund_pair() { # vxtund_pair NAME TYPE OFFLOAD [SPEC]: SPEC as in VARIANTS
    pair "$1"
    local i s id="vni = 42"
    [ "$2" = gre ] && id="key = 42"
    for i in 1 2; do
        s=$([ $i = 1 ] && echo a || echo b)
        cat >"$tmp/$1-$s.toml" <<CONF
[device]
name = "vxt0"
addresses = ["10.99.0.$i/24"]
offload = $3
[underlay]
local = "10.201.0.$i"
offload = $3
[[tunnel]]
name = "peer"
type = "$2"
remote = "10.201.0.$((3 - i))"
$id
[control]
socket = "$tmp/$1-$s.sock"
CONF
        IFS=, read -r -a settings <<<"${4:-}"
        for kv in "${settings[@]}"; do
            toml_set "$tmp/$1-$s.toml" "$(variant_section "${kv%%=*}")" "${kv%%=*}" \
                "$(toml_value "${kv#*=}")"
        done
        ip netns exec "$p-$1-$s" "$bin" --config "$tmp/$1-$s.toml" --log-level warn \
            >"$tmp/$1-$s.out" 2>"$tmp/$1-$s.log" &
        echo $! >"$tmp/$1-$s.pid"
    done
    wait_ready "$tmp/$1-a.out"; wait_ready "$tmp/$1-b.out"
}
setup_vxtund() { vxtund_pair vxtund vxlan true; }
setup_vxtund_nooff() { vxtund_pair vxtund_nooff vxlan false; }
setup_gre() { vxtund_pair gre gre true; }

setup_tinc() {
    pair tinc
    local i s o d
    for i in 1 2; do
        s=$([ $i = 1 ] && echo a || echo b); o=$([ $i = 1 ] && echo b || echo a)
        d=$tmp/tinc-$s; mkdir -p "$d/hosts"
        printf 'Name = %s\nMode = switch\nInterface = tinc0\nAddressFamily = ipv4\nBindToAddress = 10.201.0.%s\nConnectTo = %s\n' \
            "$s" "$i" "$o" >"$d/tinc.conf"
        printf '#!/bin/sh\nip link set $INTERFACE mtu 1450 up\nip addr add 10.99.0.%s/24 dev $INTERFACE\n' "$i" >"$d/tinc-up"
        chmod +x "$d/tinc-up"
        printf 'Address = 10.201.0.%s\nCipher = none\nDigest = none\nCompression = 0\n' "$i" >"$d/hosts/$s"
        tincd -c "$d" -K 2048 </dev/null >/dev/null 2>&1
    done
    cp "$tmp/tinc-a/hosts/a" "$tmp/tinc-b/hosts/"; cp "$tmp/tinc-b/hosts/b" "$tmp/tinc-a/hosts/"
    for s in a b; do
        ip netns exec "$p-tinc-$s" tincd -c "$tmp/tinc-$s" --pidfile "$tmp/tinc-$s.pid" \
            --logfile="$tmp/tinc-$s.log"
    done
}

setup_openvpn() {
    pair openvpn
    local i s
    for i in 1 2; do
        s=$([ $i = 1 ] && echo a || echo b)
        ip netns exec "$p-openvpn-$s" openvpn --dev tap0 --dev-type tap --proto udp \
            --local "10.201.0.$i" --lport 1194 --remote "10.201.0.$((3 - i))" --rport 1194 \
            --ifconfig "10.99.0.$i" 255.255.255.0 --tun-mtu 1450 --cipher none --auth none \
            --daemon --writepid "$tmp/openvpn-$s.pid" --log "$tmp/openvpn-$s.log"
    done
}

relay_pair() { # relay_pair NAME BUSY_POLL_US: benches/relay_bound.rs's relay in both namespaces
    pair "$1"
    local exe i s
    exe=$(cd "$here" && cargo bench --bench relay_bound --no-run 2>&1 |
        sed -n 's/.*Executable .*(\(.*\))$/\1/p')
    [ -x "$here/$exe" ] || { echo "relay_bound did not build" >&2; exit 1; }
    for i in 1 2; do
        s=$([ $i = 1 ] && echo a || echo b)
        RELAY_BUSY_POLL_US=$2 ip netns exec "$p-$1-$s" "$here/$exe" relay "10.201.0.$i" \
            "10.201.0.$((3 - i))" "10.99.0.$i/24" >"$tmp/$1-$s.out" 2>"$tmp/$1-$s.log" &
        echo $! >"$tmp/$1-$s.pid"
    done
    wait_ready "$tmp/$1-a.out" "relay ready"; wait_ready "$tmp/$1-b.out" "relay ready"
}
setup_bound() { relay_pair bound 0; }
setup_bound_poll() { relay_pair bound_poll 200; }

server_addr() { if [ "$1" = veth ]; then echo 10.201.0.2; else echo 10.99.0.2; fi; }

for path in $PATHS; do
    if [ -n "${variant[$path]:-}" ]; then
        vxtund_pair "$path" vxlan true "${variant[$path]}"
    else
        "setup_$path"
    fi
done
sleep 2
for path in $PATHS; do
    addr=$(server_addr "$path")
    for _ in $(seq 50); do
        ip netns exec "$p-$path-a" ping -c 1 -W 1 -q "$addr" >/dev/null 2>&1 && break
        sleep 0.2
    done
    ip netns exec "$p-$path-a" ping -c 1 -W 2 -q "$addr" >/dev/null || { echo "$path does not ping" >&2; exit 1; }
    ip netns exec "$p-$path-b" iperf3 -s -D --pidfile "$tmp/iperf-$path.pid" -B "$addr"
done
sleep 0.5

tunnel_pids() { # the tunnel's two processes, if it has any
    local s
    for s in a b; do [ -f "$tmp/$1-$s.pid" ] && cat "$tmp/$1-$s.pid"; done
    return 0
}

cpu_ticks() { # user + system ticks of the tunnel's processes
    local total=0 pid
    for pid in $(tunnel_pids "$1"); do
        read -r -a f <"/proc/$pid/stat"
        total=$((total + f[13] + f[14]))
    done
    echo "$total"
}

machine_ticks() { # busy ticks of all CPUs: user + nice + system + irq + softirq + steal
    local cpu user nice system idle iowait irq softirq steal rest
    read -r cpu user nice system idle iowait irq softirq steal rest </proc/stat
    echo $((user + nice + system + irq + softirq + steal))
}

wakeups() { # "TID voluntary_ctxt_switches" for every thread of the tunnel's processes
    local pid
    for pid in $(tunnel_pids "$1"); do
        awk '$1 == "voluntary_ctxt_switches:" { split(FILENAME, f, "/"); print f[5], $2 }' \
            /proc/"$pid"/task/*/status 2>/dev/null || true
    done
}

rss_kib() { # rss_kib PID FIELD: VmRSS or VmHWM in KiB
    awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}

paced_rate() { # 80 % of the kernel's median UDP datagram rate so far, as iperf3 -b bits/s
    python3 - "$tmp" <<'PY'
import glob, json, statistics, sys
rates = []
for name in glob.glob(f"{sys.argv[1]}/kernel-udp-*.json"):
    try:
        s = json.load(open(name))["end"]["sum"]
        rates.append((s["packets"] - s["lost_packets"]) / s["seconds"])
    except Exception:
        pass
rate = int(0.8 * statistics.median(rates) * 1400 * 8) if rates else 0
# iperf3 takes -b 0 for "unlimited": never pace at 0, however badly the kernel's runs went.
print(max(rate, 1000))
PY
}

loss_snapshot() { # loss_snapshot PATH FILE: the counters of where UDP datagrams are lost, read
    # inside each namespace, raw into FILE.a and FILE.b (parsed by the report): the UDP MIB,
    # the sockets' drops, every link's and qdisc's counters, and vxtund's own (vxtunctl show)
    local s
    for s in a b; do
        ip netns exec "$p-$1-$s" sh -c '
            for f in snmp udp udp6 raw raw6; do echo "### $f"; cat "/proc/net/$f"; done
            echo "### link"; ip -s -j link show; echo
            echo "### qdisc"; tc -s -j qdisc show; echo' >"$2.$s" 2>/dev/null || true
        if [ -S "$tmp/$1-$s.sock" ] && [ -x "$ctl" ]; then
            { echo "### vxtund"; "$ctl" -s "$tmp/$1-$s.sock" show; } >>"$2.$s" 2>/dev/null || true
        fi
    done
}

measure() { # measure PATH TEST RUN -> $tmp/PATH-TEST-RUN.json, .cpu, .mcpu, .wake0, .wake1
    # and, for udp and udp80, .loss0.{a,b} and .loss1.{a,b}
    local path=$1 test=$2 run=$3 args=()
    case "$test" in
        tcp) args=() ;;
        tcp_rev) args=(-R) ;;
        tcp4) args=(-P 4) ;;
        udp) args=(-u -b 0 -l 1400 -w 4M) ;;
        udp80) args=(-u -b "$(paced_rate)" -l 1400 -w 4M) ;;
    esac
    local before machine_before out=$tmp/$path-$test-$run
    case "$test" in udp*) loss_snapshot "$path" "$out.loss0" ;; esac
    before=$(cpu_ticks "$path")
    wakeups "$path" >"$out.wake0"
    machine_before=$(machine_ticks)
    ip netns exec "$p-$path-a" timeout $((DURATION + 20)) iperf3 -c "$(server_addr "$path")" \
        -t "$DURATION" -J "${args[@]}" >"$out.json" 2>>"$tmp/iperf.err" || true
    echo $(($(machine_ticks) - machine_before)) >"$out.mcpu"
    wakeups "$path" >"$out.wake1"
    echo $(($(cpu_ticks "$path") - before)) >"$out.cpu"
    case "$test" in udp*) loss_snapshot "$path" "$out.loss1" ;; esac
}

rss_start=""
if [[ " $PATHS " == *" vxtund "* ]]; then rss_start=$(rss_kib "$(cat "$tmp/vxtund-b.pid")" VmRSS); fi
for run in $(seq "$RUNS"); do
    for test in $TESTS; do
        order=$PATHS
        # alternate the order so that no path always runs first
        [ $((run % 2)) = 0 ] && order=$(echo "$PATHS" | tr ' ' '\n' | tac | tr '\n' ' ')
        for path in $order; do measure "$path" "$test" "$run"; done
    done
done
memory=""
if [ -n "$rss_start" ]; then
    for s in a b; do
        pid=$(cat "$tmp/vxtund-$s.pid")
        memory+="vxtund-$s: VmRSS $(rss_kib "$pid" VmRSS) KiB (peak $(rss_kib "$pid" VmHWM) KiB)"
        [ "$s" = b ] && memory+=", receiver's VmRSS at the start $rss_start KiB"
        memory+="; "
    done
fi

python3 - "$tmp" "$RUNS" "$DURATION" "$(getconf CLK_TCK)" "$PATHS" "$TESTS" "$memory" "$VARIANTS" <<'PY'
import json, re, statistics, sys
tmp, runs, duration, hz = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
paths, tests, memory, variants = sys.argv[5].split(), sys.argv[6].split(), sys.argv[7], sys.argv[8].split()
labels = {"veth": "veth, no tunnel", "kernel": "kernel vxlan", "vxtund": "vxtund VXLAN",
          "vxtund_nooff": "vxtund VXLAN, offloads off", "gre": "vxtund GRE",
          "tinc": "tinc 1.0 switch, no crypto", "openvpn": "OpenVPN 2.6 tap, no crypto",
          "bound": "copy-only relay (relay_bound)",
          "bound_poll": "copy-only relay, polling 200 µs"}
heads = {"tcp": "TCP 1 stream, Gbit/s", "tcp_rev": "TCP reverse, Gbit/s",
         "tcp4": "TCP 4 streams, Gbit/s", "udp": "UDP 1400 B, kpps (loss)",
         "udp80": "UDP at 80 % of the kernel's rate, kpps (loss)"}
short = {"tcp": "TCP 1 stream", "tcp_rev": "TCP reverse", "tcp4": "TCP 4 streams",
         "udp": "UDP 1400 B", "udp80": "UDP at 80 %"}
for v in variants:
    name, spec = v.split(":", 1)
    labels[f"vxtund_{name}"] = f"vxtund VXLAN, {name} ({spec})"

def value(path, test, run):
    try:
        with open(f"{tmp}/{path}-{test}-{run}.json") as f:
            j = json.load(f)
        if test.startswith("udp"):
            s = j["end"]["sum"]
            return (s["packets"] - s["lost_packets"]) / s["seconds"] / 1000, s["lost_percent"]
        return j["end"]["sum_received"]["bits_per_second"] / 1e9, None
    except Exception:
        return 0.0, None

def median(path, test):
    vs = [value(path, test, r) for r in range(1, runs + 1)]
    loss = [v[1] for v in vs if v[1] is not None]
    return statistics.median(v[0] for v in vs), (statistics.median(loss) if loss else None)

def cpu(path, test):
    try:
        return statistics.median(int(open(f"{tmp}/{path}-{test}-{r}.cpu").read()) / hz / duration * 100
                                 for r in range(1, runs + 1))
    except Exception:
        return 0

def gbps(path, test, run): # what the path carried; UDP: the datagrams received, 1400 B each
    m, _ = value(path, test, run)
    return m * 1400 * 8 / 1e6 if test.startswith("udp") else m

def per_gbit(path, test, kind): # CPU s per Gbit carried, median of the runs; kind cpu or mcpu
    xs = []
    for r in range(1, runs + 1):
        try:
            ticks = int(open(f"{tmp}/{path}-{test}-{r}.{kind}").read())
        except Exception:
            continue
        if gbps(path, test, r) > 0:
            xs.append(ticks / hz / duration / gbps(path, test, r))
    return statistics.median(xs) if xs else None

def wakeups(path, test, run): # the tunnel threads' voluntary context switches per second
    def snapshot(n):
        with open(f"{tmp}/{path}-{test}-{run}.wake{n}") as f:
            return {tid: int(count) for tid, count in (line.split() for line in f)}
    try:
        before, after = snapshot(0), snapshot(1)
    except Exception:
        return None
    # a thread that started during the test counts from 0; one that ended is lost
    return sum(c - before.get(tid, 0) for tid, c in after.items()) / duration if after else None

def wake(path, test): # (per second, per Gbit), medians of the runs
    per_s, per_gbit_ = [], []
    for r in range(1, runs + 1):
        w = wakeups(path, test, r)
        if w is not None:
            per_s.append(w)
            if gbps(path, test, r) > 0:
                per_gbit_.append(w / gbps(path, test, r))
    return (statistics.median(per_s) if per_s else None,
            statistics.median(per_gbit_) if per_gbit_ else None)

def fmt_cpu(x):
    return "—" if x is None else f"{x:.3f}"

def fmt_count(x):
    if x is None:
        return "—"
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"

kernel = {t: median("kernel", t)[0] for t in tests} if "kernel" in paths else {}
print(f"| path ({runs} run(s) of {duration:.0f} s, median) | " + " | ".join(heads[t] for t in tests) + " | CPU % (TCP, UDP) | "
      + " | ".join(f"{short[t]}: CPU s per Gbit, tunnel / machine" for t in tests) + " | "
      + " | ".join(f"{short[t]}: wake-ups per s / per Gbit" for t in tests) + " |")
print("|---|" + "---|" * (3 * len(tests) + 1))
results = {}
for path in paths:
    cells = []
    for t in tests:
        m, loss = median(path, t)
        results[(path, t)] = m
        cell = f"{m:.2f}" if not t.startswith("udp") else f"{m:.1f}"
        if loss is not None:
            cell += f" ({loss:.2f} %)"
        if kernel.get(t):
            cell += f" · {m / kernel[t]:.2f}×"
        cells.append(cell)
    tunnel_cpu = "-" if path in ("veth", "kernel") else f"{cpu(path, 'tcp'):.0f}, {cpu(path, 'udp'):.0f}"
    costs = [f"{fmt_cpu(per_gbit(path, t, 'cpu') if path not in ('veth', 'kernel') else None)}"
             f" / {fmt_cpu(per_gbit(path, t, 'mcpu'))}" for t in tests]
    wakes = [" / ".join(fmt_count(w) for w in wake(path, t)) for t in tests]
    print(f"| {labels.get(path, path)} | " + " | ".join(cells) + f" | {tunnel_cpu} | "
          + " | ".join(costs) + " | " + " | ".join(wakes) + " |")
print()
print("· N× = ratio to the kernel's vxlan in the same run. CPU %: the tunnel's two processes together (200 = both cores); the kernel's own work is not counted.")
print("· CPU s per Gbit: CPU seconds per Gbit carried, i.e. (CPU s / test's duration) / (Gbit/s), CPU-cores per Gbit/s; for UDP per Gbit of datagrams received (1400 B each)."
      " tunnel: the tunnel's two processes (— for veth and the kernel's vxlan, which have none);"
      " machine: all CPUs' busy time over the test from /proc/stat (user, nice, system, irq, softirq, steal), so iperf3 at both ends, the kernel's softirq work, the tunnel, and anything else running.")
print("· Wake-ups: voluntary context switches of all the tunnel processes' threads over the test, per second and per Gbit carried (vxtund's data path sleeps in poll(): each is one wake-up).")
if "kernel" in paths:
    for path in paths:
        if path == "kernel":
            continue
        ratios = [(short[t], per_gbit(path, t, "mcpu"), per_gbit("kernel", t, "mcpu")) for t in tests]
        ratios = [f"{name} {m / k:.2f}×" for name, m, k in ratios if m is not None and k]
        if ratios:
            print(f"Machine CPU s per Gbit, {labels.get(path, path)} / kernel vxlan: " + ", ".join(ratios))
for other in ("tinc", "openvpn"):
    if ("vxtund", "tcp") in results and results.get((other, "tcp")):
        print(f"vxtund VXLAN / {labels[other]}: TCP {results[('vxtund', 'tcp')] / results[(other, 'tcp')]:.1f}×" +
              (f", reverse {results[('vxtund', 'tcp_rev')] / results[(other, 'tcp_rev')]:.1f}×" if results.get((other, 'tcp_rev')) else ""))
if results.get(("vxtund", "tcp")) and ("gre", "tcp") in results:
    print("vxtund GRE / vxtund VXLAN: TCP " + ", ".join(
        f"{name} {results[('gre', t)] / results[('vxtund', t)]:.2f}×"
        for t, name in (("tcp", "1 stream"), ("tcp_rev", "reverse"), ("tcp4", "4 streams"))
        if results.get(("vxtund", t)) and ("gre", t) in results))
# Where the UDP tests' datagrams were lost: counters read in both namespaces before and after each.
devices = {"kernel": "vx0", "tinc": "tinc0", "openvpn": "tap0"} # vxtund's paths: vxt0; veth: none
tunnel_sockets = {"kernel": ("udp", 8472), "tinc": ("udp", 655), "openvpn": ("udp", 1194),
                  "gre": ("raw", 47)} # (table, local port or protocol); vxtund's paths: udp 8472

def counters(name): # the snapshot of loss_snapshot, as {counter: value}
    sections, current = {}, None
    with open(name) as f:
        for line in f:
            if line.startswith("### "):
                current = sections.setdefault(line[4:].strip(), [])
            elif current is not None:
                current.append(line)
    c = {}
    snmp = sections.get("snmp", [])
    for head, values in zip(snmp[0::2], snmp[1::2]):
        keys, values = head.split(), values.split()
        c.update({f"{keys[0][:-1]}.{k}": int(v) for k, v in zip(keys[1:], values[1:])})
    for table in ("udp", "udp6", "raw", "raw6"): # drops per local port (raw: per protocol)
        for line in sections.get(table, [])[1:]:
            x = line.split()
            key = f"{table.rstrip('6')}:{int(x[1].rsplit(':', 1)[1], 16)}"
            c[key] = c.get(key, 0) + int(x[-1])
    for link in json.loads("".join(sections.get("link", [])) or "[]"):
        for direction in ("rx", "tx"):
            for k, v in link.get("stats64", {}).get(direction, {}).items():
                c[f"{link['ifname']}.{direction}.{k}"] = v
    for q in json.loads("".join(sections.get("qdisc", [])) or "[]"):
        if q.get("root"): # mq's root sums its children
            c[f"{q['dev']}.qdisc.drops"] = c.get(f"{q['dev']}.qdisc.drops", 0) + q.get("drops", 0)
    for line in sections.get("vxtund", []):
        m = re.match(r" \d+ \S+ \((\w+).*rx_packets=(\d+) .*tx_packets=(\d+) .*tx_errors=(\d+)", line)
        if m: # the TAP is the "local" port; the rest are tunnels, summed
            port = "tap" if m[1] == "local" else "tunnel"
            for k, v in zip(("rx", "tx", "tx_errors"), m.groups()[1:]):
                c[f"vxtund.{port}.{k}"] = c.get(f"vxtund.{port}.{k}", 0) + int(v)
    return c

def loss_parts(path, test, run): # (sent, lost, {place: datagrams}) of one UDP run, or None
    try:
        with open(f"{tmp}/{path}-{test}-{run}.json") as f:
            end = json.load(f)["end"]
        sent, got = end.get("sum_sent", end["sum"]), end.get("sum_received", end["sum"])
        sent, lost = sent["packets"], sent["packets"] - (got["packets"] - got["lost_packets"])
        a0, a1, b0, b1 = (counters(f"{tmp}/{path}-{test}-{run}.loss{n}.{s}")
                          for n, s in ((0, "a"), (1, "a"), (0, "b"), (1, "b")))
    except Exception:
        return None
    if not sent or "Udp.InErrors" not in b1:
        return None
    da = lambda k: a1.get(k, 0) - a0.get(k, 0)
    db = lambda k: b1.get(k, 0) - b0.get(k, 0)
    vxtund = "vxtund.tunnel.tx" in a1 and "vxtund.tunnel.rx" in b1
    dev = None if path == "veth" else devices.get(path, "vxt0")
    table, port = tunnel_sockets.get(path, ("udp", 8472))
    sockets = db(f"{table}:{port}") if path != "veth" else 0
    parts = {}
    if dev:
        parts["send_dev"] = da(f"{dev}.tx.dropped") + da(f"{dev}.qdisc.drops")
    if vxtund: # read from the TAP but not sent: vxtund's drops and failed sends
        parts["send_vxtund"] = da("vxtund.tap.rx") - da("vxtund.tunnel.tx") + da("vxtund.tunnel.tx_errors")
    # a veth counts its peer's backlog overflows in its tx_dropped, the peer in its rx_dropped too
    parts["veth"] = max(da("ul0.tx.dropped"), db("ul0.rx.dropped"))
    if vxtund: # sent by one vxtund, not received by the other (socket drops count GRO batches)
        parts["sockets"] = da("vxtund.tunnel.tx") - db("vxtund.tunnel.rx") - parts["veth"]
    elif path != "veth":
        parts["sockets"] = sockets
    if vxtund:
        parts["recv_vxtund"] = db("vxtund.tunnel.rx") - db("vxtund.tap.tx") + db("vxtund.tap.tx_errors")
    if dev:
        parts["recv_dev"] = db(f"{dev}.rx.dropped")
    # the receiving namespace's UDP receive errors, less the tunnel's own UDP sockets' drops
    parts["recv_socket"] = db("Udp.InErrors") - (sockets if table == "udp" else 0)
    parts["late"] = db("Udp.NoPorts") # arrived after the receiving iperf3 had closed its socket
    parts["other"] = lost - sum(parts.values())
    return sent, lost, parts

places = [("send_dev", "sending TAP / device: tx_dropped"), ("send_vxtund", "sending vxtund"),
          ("veth", "underlay veth"), ("sockets", "tunnel sockets"),
          ("recv_vxtund", "receiving vxtund"), ("recv_dev", "receiving TAP / device: rx_dropped"),
          ("recv_socket", "receiving iperf3 socket"), ("late", "late"), ("other", "other")]
for test in [t for t in ("udp", "udp80") if t in tests]:
    print()
    print(f"| {short[test]}: where datagrams were lost, % of those sent (the run of median loss) | lost | "
          + " | ".join(name for _, name in places) + " |")
    print("|---|" + "---|" * (len(places) + 1))
    for path in paths:
        found = [(r, loss_parts(path, test, r)) for r in range(1, runs + 1)]
        found = sorted(((r, x) for r, x in found if x), key=lambda rx: rx[1][1] / rx[1][0])
        if not found:
            print(f"| {labels.get(path, path)} | — |" + " — |" * len(places))
            continue
        run, (sent, lost, parts) = found[(len(found) - 1) // 2]
        pct = lambda n: f"{100 * n / sent + 0.0:.2f}".replace("-0.00", "0.00")
        print(f"| {labels.get(path, path)} (run {run}) | {pct(lost)} | "
              + " | ".join(pct(parts[k]) if k in parts else "—" for k, _ in places) + " |")
if "udp" in tests or "udp80" in tests:
    print("· lost: sent less received (iperf3's own loss leaves out the last datagrams, which it never saw). Counter deltas over each UDP test, read in the namespaces:"
          " sending TAP / device: tx_dropped (a TAP's ring full: its reader too slow) and qdisc drops of vxt0, vx0, tinc0 or tap0 at the sender;"
          " vxtund: frames it read but did not send (drops, failed sends), and received but did not write, from vxtunctl show;"
          " underlay veth: the veth's drops (its peer's backlog full);"
          " tunnel sockets: vxtund's frames sent less those received, less veth drops (the sockets' own drop counters count GRO batches, not datagrams);"
          " for the others the receiving namespace's drops of the tunnel's sockets (/proc/net/udp port 8472, 655 or 1194; /proc/net/raw protocol 47);"
          " receiving TAP / device: rx_dropped at the receiver (the backlog full; for vxtund a coalesced write counts once);"
          " receiving iperf3 socket: the receiving namespace's UDP InErrors less the tunnel's UDP sockets' drops (its buffer full);"
          " late: datagrams to no socket (Udp NoPorts: they arrived after iperf3 had closed it); other: what none of these counted.")
if memory:
    print("Memory: " + memory)
PY
if [ "${LATENCY:-1}" = 1 ]; then
    # Latency under load: a ping every millisecond through the tunnel while one TCP stream
    # fills it (the queueing a bulk flow adds for everyone else), per path.
    echo
    echo "Latency under load: ping every 1 ms through the tunnel while one TCP stream runs (LATENCY=0 skips)"
    echo
    echo "| path | ping p50, ms | p99, ms | max, ms | pings | TCP meanwhile, Gbit/s |"
    echo "|---|---|---|---|---|---|"
    for path in $PATHS; do
        ip netns exec "$p-$path-a" timeout $((DURATION + 20)) iperf3 -c "$(server_addr "$path")" \
            -t "$DURATION" -J >"$tmp/$path-lat.json" 2>>"$tmp/iperf.err" &
        bulk=$!
        sleep 1
        ip netns exec "$p-$path-a" ping -n -i 0.001 -w $((DURATION > 3 ? DURATION - 2 : 1)) \
            "$(server_addr "$path")" >"$tmp/$path-lat.ping" 2>/dev/null || true
        wait "$bulk" || true
        python3 - "$tmp/$path-lat.ping" "$tmp/$path-lat.json" "$path" <<'PY'
import json, re, sys
rtts = sorted(float(m) for m in re.findall(r"time=([0-9.]+) ms", open(sys.argv[1]).read()))
try:
    bps = json.load(open(sys.argv[2]))["end"]["sum_received"]["bits_per_second"] / 1e9
except Exception:
    bps = float("nan")
pick = lambda q: rtts[min(len(rtts) - 1, int(q * len(rtts)))] if rtts else float("nan")
print(f"| {sys.argv[3]} | {pick(0.5):.3f} | {pick(0.99):.3f} | {rtts[-1] if rtts else float('nan'):.3f} | {len(rtts)} | {bps:.2f} |")
PY
    done
fi
if [ "${CONNS:-1}" = 1 ]; then
    # New connections: each is a new flow whose SYN vxtund decides (an upcall on the fast
    # path), one after another from two client processes (benches/conn_rate.py).
    echo
    echo "New TCP connections per second through the tunnel, two clients one after another (CONNS=0 skips)"
    echo
    echo "| path | connections/s | ratio to the kernel's vxlan |"
    echo "|---|---|---|"
    kernel_conns=""
    for path in $PATHS; do
        ip netns exec "$p-$path-b" python3 "$here/benches/conn_rate.py" server \
            "$(server_addr "$path")" 5302 >/dev/null 2>&1 &
        server=$!
        sleep 0.5
        rate=$(ip netns exec "$p-$path-a" timeout $((DURATION + 20)) python3 \
            "$here/benches/conn_rate.py" client "$(server_addr "$path")" 5302 "$DURATION" 2 \
            2>>"$tmp/iperf.err" || echo 0)
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
        [ "$path" = kernel ] && kernel_conns=$rate
        ratio=$(python3 -c "import sys; k=float(sys.argv[1] or 0); print(f'{float(sys.argv[2])/k:.2f}' if k else '-')" "$kernel_conns" "$rate")
        echo "| $path | $rate | $ratio |"
    done
fi
if [[ " $PATHS " == *" gre "* ]]; then
    # What raw GRE sockets carry on this machine with nothing else running, for the GRE row.
    echo
    echo "GRE ceiling (benches/gre_ceiling.rs, vxtund's GRE sockets alone, 1500-byte packets):"
    (cd "$here" && RUNS=$RUNS DURATION=5 cargo bench -q --bench gre_ceiling)
fi
