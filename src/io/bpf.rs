//! The fast path's BPF programs in the kernel: loading them (aya), attaching them through tcx
//! links to the TAP's egress and the underlay devices' ingress, and the map operations the
//! daemon uses (raw `bpf(2)` calls on the maps' descriptors, so that any thread can install an
//! entry without a lock).
//!
//! tcx links belong to the process: when vxtund exits, SIGKILL included, the kernel closes its
//! descriptors and detaches the programs, so a dead daemon's programs never forward or
//! black-hole anything. The programs are built from `bpf/fastpath.c` by `build.rs`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use aya::maps::{Map, MapData};
use aya::programs::links::LinkOrder;
use aya::programs::tc::{SchedClassifier, TcAttachOptions, TcAttachType};
use aya::{Ebpf, EbpfLoader};

use crate::fastpath::{Key, Stat, Value};

/// The programs, as `build.rs` built them (empty when the build had no clang).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/fastpath.o"));

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_ANY: u64 = 0;

/// Why the fast path could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// The build had no clang.
    #[error("this vxtund was built without its BPF programs (no clang at build time)")]
    NotBuilt,
    /// The object would not load (verifier, permissions, a missing map type).
    #[error("loading the BPF programs: {0}")]
    Load(String),
    /// A program would not attach.
    #[error("attaching {program} to `{device}`: {reason}")]
    Attach {
        /// The program.
        program: &'static str,
        /// The device.
        device: String,
        /// What the kernel said.
        reason: String,
    },
    /// A map operation failed during set-up.
    #[error("setting up the BPF maps: {0}")]
    Map(io::Error),
}

/// The loaded and attached programs and their maps.
pub struct Programs {
    /// Owns the programs and their links: dropping it detaches them.
    _ebpf: Mutex<Ebpf>,
    cache: OwnedFd,
    generation: OwnedFd,
    stats: OwnedFd,
    cpus: usize,
    /// Entries the cache holds at most.
    pub capacity: u32,
}

impl Programs {
    /// Loads the programs with a cache of `capacity` entries, attaches `vxt_encap` to the
    /// egress of `tap` and `vxt_decap` to the ingress of each of `underlay`, and lets the
    /// decap program look at datagrams to `vxlan_ports`.
    pub fn load(
        tap: &str,
        underlay: &[String],
        vxlan_ports: &[u16],
        capacity: u32,
    ) -> Result<Programs, BpfError> {
        if OBJECT.is_empty() {
            return Err(BpfError::NotBuilt);
        }
        let mut ebpf = EbpfLoader::new()
            .set_max_entries("cache", capacity)
            .load(OBJECT)
            .map_err(|e| BpfError::Load(chain(&e)))?;
        attach(&mut ebpf, "vxt_encap", tap, TcAttachType::Egress)?;
        for device in underlay {
            attach(&mut ebpf, "vxt_decap", device, TcAttachType::Ingress)?;
        }
        let fd = |ebpf: &Ebpf, name: &str| -> Result<OwnedFd, BpfError> {
            let data: &MapData = match ebpf.map(name) {
                Some(Map::HashMap(d) | Map::Array(d) | Map::PerCpuArray(d)) => d,
                _ => return Err(BpfError::Load(format!("the object has no map `{name}`"))),
            };
            data.fd()
                .as_fd()
                .try_clone_to_owned()
                .map_err(BpfError::Map)
        };
        let ports = fd(&ebpf, "vxlan_ports")?;
        for &port in vxlan_ports {
            update(ports.as_raw_fd(), &port, &1u8).map_err(BpfError::Map)?;
        }
        Ok(Programs {
            cache: fd(&ebpf, "cache")?,
            generation: fd(&ebpf, "generation")?,
            stats: fd(&ebpf, "stats")?,
            _ebpf: Mutex::new(ebpf),
            cpus: possible_cpus(),
            capacity,
        })
    }

    /// Installs (or replaces) an entry.
    pub fn install(&self, key: &Key, value: &Value) -> io::Result<()> {
        update(self.cache.as_raw_fd(), key, value)
    }

    /// The entry for `key`, if any.
    pub fn entry(&self, key: &Key) -> Option<Value> {
        let mut value = Value::default();
        let mut attr = ElemAttr::new(self.cache.as_raw_fd(), key, &mut value, 0);
        bpf(BPF_MAP_LOOKUP_ELEM, &mut attr).ok().map(|_| value)
    }

    /// Removes the entry for `key`.
    pub fn remove(&self, key: &Key) -> io::Result<()> {
        let mut attr = ElemAttr::new(self.cache.as_raw_fd(), key, &mut (), 0);
        bpf(BPF_MAP_DELETE_ELEM, &mut attr).map(drop)
    }

    /// A publisher of generations into the programs' map (see
    /// [`crate::switch::Generation::set_publisher`]).
    pub fn generation_publisher(&self) -> io::Result<crate::switch::Publisher> {
        let fd = self.generation.try_clone()?;
        Ok(Box::new(move |g: u64| {
            if let Err(e) = update(fd.as_raw_fd(), &0u32, &g) {
                // The programs then keep the older generation: every entry made since is a
                // miss, and frames take the userspace path.
                tracing::error!("fast path: publishing generation {g}: {e}");
            }
        }))
    }

    /// Every entry, read in batches (the programs go on counting meanwhile).
    pub fn entries(&self, out: &mut Vec<(Key, Value)>) -> io::Result<()> {
        out.clear();
        const CHUNK: u32 = 4096;
        let mut keys = vec![Key::default(); CHUNK as usize];
        let mut values = vec![Value::default(); CHUNK as usize];
        let (mut token_in, mut token_out) = (0u64, 0u64);
        let mut first = true;
        loop {
            let mut attr = BatchAttr {
                in_batch: if first {
                    0
                } else {
                    &mut token_in as *mut u64 as u64
                },
                out_batch: &mut token_out as *mut u64 as u64,
                keys: keys.as_mut_ptr() as u64,
                values: values.as_mut_ptr() as u64,
                count: CHUNK,
                map_fd: self.cache.as_raw_fd() as u32,
                elem_flags: 0,
                flags: 0,
            };
            let done = match bpf(BPF_MAP_LOOKUP_BATCH, &mut attr) {
                Ok(_) => false,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => true,
                Err(e) => return Err(e),
            };
            let n = (attr.count as usize).min(CHUNK as usize);
            out.extend(keys[..n].iter().copied().zip(values[..n].iter().copied()));
            if done {
                return Ok(());
            }
            token_in = token_out;
            first = false;
        }
    }

    /// The programs' counters, summed over the CPUs, in [`Stat::ALL`] order.
    pub fn stats(&self) -> [u64; Stat::ALL.len()] {
        let mut sums = [0u64; Stat::ALL.len()];
        let mut per_cpu = vec![0u64; self.cpus];
        for (i, sum) in sums.iter_mut().enumerate() {
            let key = i as u32;
            per_cpu.iter_mut().for_each(|v| *v = 0);
            let mut attr = ElemAttr {
                map_fd: self.stats.as_raw_fd() as u32,
                pad: 0,
                key: &key as *const u32 as u64,
                value: per_cpu.as_mut_ptr() as u64,
                flags: 0,
            };
            if bpf(BPF_MAP_LOOKUP_ELEM, &mut attr).is_ok() {
                *sum = per_cpu.iter().sum();
            }
        }
        sums
    }
}

/// Whether this build carries the programs (built with clang).
pub fn built() -> bool {
    !OBJECT.is_empty()
}

/// CLOCK_MONOTONIC in nanoseconds: the programs' clock (`bpf_ktime_get_ns`).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

fn attach(
    ebpf: &mut Ebpf,
    program: &'static str,
    device: &str,
    at: TcAttachType,
) -> Result<(), BpfError> {
    let failed = |reason: String| BpfError::Attach {
        program,
        device: device.to_owned(),
        reason,
    };
    let prog: &mut SchedClassifier = ebpf
        .program_mut(program)
        .ok_or_else(|| failed("the object has no such program".into()))?
        .try_into()
        .map_err(|e: aya::programs::ProgramError| failed(chain(&e)))?;
    if prog.fd().is_err() {
        prog.load().map_err(|e| failed(chain(&e)))?;
    }
    prog.attach_with_options(device, at, TcAttachOptions::TcxOrder(LinkOrder::default()))
        .map_err(|e| failed(chain(&e)))?;
    Ok(())
}

/// An error and its causes, with the verifier's log where there is one.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The kernel's possible CPUs: how many values a per-CPU map holds.
fn possible_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| {
            s.trim()
                .split(',')
                .map(|r| match r.split_once('-') {
                    Some((_, hi)) => hi.parse::<usize>().ok().map(|h| h + 1),
                    None => r.parse::<usize>().ok().map(|c| c + 1),
                })
                .try_fold(0usize, |m, c| c.map(|c| m.max(c)))
        })
        .unwrap_or(1)
        .max(1)
}

#[repr(C)]
struct ElemAttr {
    map_fd: u32,
    pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

impl ElemAttr {
    fn new<K, V>(fd: RawFd, key: &K, value: &mut V, flags: u64) -> ElemAttr {
        ElemAttr {
            map_fd: fd as u32,
            pad: 0,
            key: key as *const K as u64,
            value: value as *mut V as u64,
            flags,
        }
    }
}

#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

fn update<K, V>(fd: RawFd, key: &K, value: &V) -> io::Result<()> {
    let mut attr = ElemAttr {
        map_fd: fd as u32,
        pad: 0,
        key: key as *const K as u64,
        value: value as *const V as u64,
        flags: BPF_ANY,
    };
    bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(drop)
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, properly laid out `union bpf_attr` prefix for `cmd`, whose
    // pointers (keys, values, batch tokens) point at live buffers of the sizes the map was
    // created with; the kernel reads and writes only within `size_of::<T>()` and those.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>(),
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}
