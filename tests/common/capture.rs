//! Captures for the namespace tests: tcpdump on one device of a namespace, into a pcap file,
//! read back as the packets it saw.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{unique, KillOnDrop, Netns};

/// tcpdump in `ns` on one device, into a file, 30 s at most (it ends by itself then); stopped
/// by [`Capture::packets`] (SIGTERM, so that it flushes), killed by PID on drop.
pub struct Capture {
    child: Option<KillOnDrop>,
    file: PathBuf,
}

impl Capture {
    /// Captures on `dev` what the tcpdump expression `filter` selects (everything when
    /// empty); returns once tcpdump captures.
    pub fn start(ns: &Netns, dev: &str, filter: &str) -> Capture {
        let file = std::env::temp_dir().join(format!("{}.pcap", unique("cap")));
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &ns.name, "tcpdump"])
            .args(["-i", dev, "-nn", "-U", "-Z", "root", "--immediate-mode"])
            .args(["-G", "30", "-W", "1", "-s", "0", "-w"])
            .arg(&file);
        if !filter.is_empty() {
            command.arg(filter);
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tcpdump");
        // tcpdump says "listening on" once its filter is in place.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("listening on") {
            line.clear();
            if err.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("tcpdump on {dev} did not start");
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        Capture {
            child: Some(KillOnDrop(child)),
            file,
        }
    }

    /// Stops the capture and returns the packets it saw, each from its link-layer header
    /// (none on an L3 device such as WireGuard's).
    pub fn packets(mut self) -> Vec<Vec<u8>> {
        std::thread::sleep(Duration::from_millis(300));
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill with the PID of our own, not yet reaped child (`ip netns exec`
            // became tcpdump).
            unsafe { libc::kill(c.0.id() as i32, libc::SIGTERM) };
            let _ = c.0.wait();
        }
        read_pcap(&self.file)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        drop(self.child.take());
        let _ = std::fs::remove_file(&self.file);
    }
}

/// The packets of a classic pcap file (either byte order).
pub fn read_pcap(path: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(path).unwrap_or_default();
    if data.len() < 24 {
        return Vec::new();
    }
    let le = matches!(
        &data[..4],
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]
    );
    let u32_at = |b: &[u8]| {
        let a = [b[0], b[1], b[2], b[3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let mut out = Vec::new();
    let mut off = 24;
    while off + 16 <= data.len() {
        let incl = u32_at(&data[off + 8..]) as usize;
        off += 16;
        if off + incl > data.len() {
            break;
        }
        out.push(data[off..off + incl].to_vec());
        off += incl;
    }
    out
}
