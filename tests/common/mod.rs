//! Helpers for the privileged end-to-end tests: network namespaces and vxtund processes that
//! clean up after themselves (on drop, so also when a test fails), with names unique to each
//! test so tests can run in parallel.

#![allow(dead_code)]

pub mod capture;
pub mod pki;
pub mod scenario;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// True when running as root. Otherwise says loudly, past the test harness's output capture,
/// that `test` was skipped.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    skip(
        test,
        "needs root for network namespaces (run the test command as root)",
    )
}

/// Says loudly, past the test harness's output capture, that `test` was skipped and why, and
/// returns false; under CI (`CI` set), where a skip would prove nothing, fails instead. The
/// one way every test here says it did not run.
pub fn skip(test: &str, why: &str) -> bool {
    let message = format!("*** SKIPPED {test}: {why} ***");
    assert!(std::env::var_os("CI").is_none(), "{message}");
    let _ = writeln!(std::io::stderr(), "\n{message}\n");
    false
}

/// Whether every tool of `tools` (a command on the PATH or an absolute path, with the Debian
/// package that has it) is installed. Otherwise says loudly, past the test harness's output
/// capture, that `test` was skipped and what `scripts/setup.sh` would install; under CI
/// (`CI` set), where a skip would prove nothing, it fails instead.
pub fn require_tools(test: &str, tools: &[(&str, &str)]) -> bool {
    let missing: Vec<&(&str, &str)> = tools
        .iter()
        .filter(|(tool, _)| {
            !Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let names: Vec<&str> = missing.iter().map(|(t, _)| *t).collect();
    let mut packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
    packages.dedup();
    let why = format!(
        "{} missing (scripts/setup.sh installs {})",
        names.join(", "),
        packages.join(", ")
    );
    skip(test, &why)
}

/// The lock of a test binary's tests that must run alone: those that measure (throughput,
/// loss, frames counted in the kernel) or bring up whole scenarios, on a two-core machine
/// where the test command runs several tests at a time. Held for the test's length.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A name no other test or run uses at the same time: `vx<tag><pid><n>`.
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "vx{tag}{}{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command; panics with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A new namespace, its loopback up and IPv6 duplicate address detection off (for every
    /// device, those made later included): an IPv6 address a test adds is usable at once, with
    /// no `nodad` to remember and no waiting for tentative addresses.
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        for key in ["all", "default"] {
            let set = format!("net.ipv6.conf.{key}.accept_dad=0");
            let out = ns.exec("sysctl", &["-qw", &set]);
            assert!(out.status.success(), "{set}: {out:?}");
        }
        ns
    }

    /// `ip ARGS` inside the namespace; panics on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command inside the namespace, with its result (no panic).
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .expect("running ip netns exec")
    }

    /// A command that runs this build's vxtund in the namespace with the config file `config`
    /// (more arguments may follow).
    pub fn vxtund(&self, config: &Path) -> Command {
        let mut command = Command::new("ip");
        command
            .args([
                "netns",
                "exec",
                &self.name,
                env!("CARGO_BIN_EXE_vxtund"),
                "--config",
            ])
            .arg(config);
        command
    }

    /// Attribute `attr` of interface `dev` in the namespace, as sysfs gives it (trimmed; empty
    /// when there is no such device).
    pub fn link_attr(&self, dev: &str, attr: &str) -> String {
        let out = self.exec("cat", &[&format!("/sys/class/net/{dev}/{attr}")]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Whether `ping` (or `ping -6` for IPv6 targets) gets three of three answers within 6 s.
    pub fn pings(&self, target: &str) -> bool {
        self.exec("ping", &["-c", "3", "-i", "0.2", "-w", "6", "-q", target])
            .status
            .success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Two hosts for a test: namespaces `a` and `b` (tagged after `tag`) joined by a veth pair,
/// each end named `ul0` and up, with the addresses `a_addr` and `b_addr` (with their prefix
/// lengths): the underlay every two-host test starts from.
pub fn two_hosts(tag: &str, a_addr: &str, b_addr: &str) -> (Netns, Netns) {
    let a = Netns::new(tag);
    let b = Netns::new(tag);
    veth(&a, "ul0", a_addr, &b, "ul0", b_addr);
    (a, b)
}

/// Two hosts joined by an underlay (from [`two_hosts`], made ready further as the test needs)
/// and the vxtund of each: the fixture of the tests between two segments. `extra` is what the
/// test keeps beside them (the processes its underlay runs on, its own parameters). Field order
/// is drop order: the daemons stop first, then `extra` goes, then the namespaces.
pub struct Pair<X = ()> {
    /// Host a's vxtund.
    pub da: Daemon,
    /// Host b's, while one runs there (a test may stop it, or put another VTEP there).
    pub db: Option<Daemon>,
    pub extra: X,
    pub a: Netns,
    pub b: Netns,
}

impl Pair {
    /// vxtund on both `hosts`, each started from `config(me, peer)`: a is 1, b is 2.
    pub fn up(hosts: (Netns, Netns), config: impl Fn(u8, u8) -> String) -> Pair {
        let (a, b) = hosts;
        let da = Daemon::start(&a, &config(1, 2));
        let db = Some(Daemon::start(&b, &config(2, 1)));
        Pair {
            da,
            db,
            extra: (),
            a,
            b,
        }
    }

    /// vxtund on host a alone, started from `config`: b is what the test makes of it.
    pub fn one_sided(hosts: (Netns, Netns), config: &str) -> Pair {
        let (a, b) = hosts;
        let da = Daemon::start(&a, config);
        Pair {
            da,
            db: None,
            extra: (),
            a,
            b,
        }
    }

    /// The pair, with `extra` kept beside it.
    pub fn with<X>(self, extra: X) -> Pair<X> {
        Pair {
            da: self.da,
            db: self.db,
            extra,
            a: self.a,
            b: self.b,
        }
    }
}

impl<X> Pair<X> {
    /// Host b's vxtund; panics when none runs.
    pub fn db(&self) -> &Daemon {
        self.db.as_ref().expect("a vxtund runs on host b")
    }

    /// Host b's vxtund, to read its counters; panics when none runs.
    pub fn db_mut(&mut self) -> &mut Daemon {
        self.db.as_mut().expect("a vxtund runs on host b")
    }
}

/// Joins two namespaces with a veth pair, names and addresses given per side.
pub fn veth(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) {
    run(
        "ip",
        &[
            "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
            &b.name,
        ],
    );
    for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        ns.ip(&["addr", "add", addr, "dev", ifname]);
        ns.ip(&["link", "set", ifname, "up"]);
    }
}

/// The fast-path setting the suites run under: `VXTUND_TEST_FAST_PATH` (`off`, `on` or
/// `auto`), put into every config the fixtures write; unset, a config keeps its own (the
/// default is `auto`: the kernel fast path wherever it loads). `scripts/test.sh` runs the
/// namespace suites once as they are and once with `off`.
pub fn with_fast_path(config: &str) -> String {
    let Ok(mode) = std::env::var("VXTUND_TEST_FAST_PATH") else {
        return config.to_owned();
    };
    if config.contains("fast_path =") {
        return config.to_owned();
    }
    let line = format!("fast_path = \"{mode}\"\n");
    match config.find("[device]\n") {
        Some(at) => {
            let end = at + "[device]\n".len();
            format!("{}{line}{}", &config[..end], &config[end..])
        }
        None => format!("{config}\n[device]\n{line}"),
    }
}

/// Writes `text` to `path` (a new file or one replaced) with mode 0600.
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = fs::remove_file(path);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    file.write_all(text.as_bytes()).unwrap();
}

/// A vxtund process in a namespace, killed (by PID) on drop.
pub struct Daemon {
    child: Option<Child>,
    dir: PathBuf,
}

impl Daemon {
    /// Starts vxtund in `ns` with `config` and waits for its ready line.
    pub fn start(ns: &Netns, config: &str) -> Daemon {
        let dir = std::env::temp_dir().join(unique("d"));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("vxtund.toml");
        // Each daemon gets its own control socket, so tests can run side by side.
        let socket = format!("socket = \"{}\"\n", dir.join("ctl.sock").display());
        let config = if config.contains("[control]\n") {
            config.replacen("[control]\n", &format!("[control]\n{socket}"), 1)
        } else {
            format!("{config}\n[control]\n{socket}")
        };
        // And its own OpenFlow socket, unless the test chose its targets.
        let config = if config.contains("[openflow]") {
            config
        } else {
            let mgmt = dir.join("of.mgmt");
            format!(
                "{config}\n[openflow]\nlisten = [\"punix:{}\"]\n",
                mgmt.display()
            )
        };
        // Readable by its owner alone, as vxtund requires of a file holding a secret.
        write_private(&path, &with_fast_path(&config));
        let child = ns
            .vxtund(&path)
            .stdout(fs::File::create(dir.join("stdout")).unwrap())
            .stderr(fs::File::create(dir.join("stderr")).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("starting vxtund");
        let mut d = Daemon {
            child: Some(child),
            dir,
        };
        let stdout = d.dir.join("stdout");
        d.wait_for(|| {
            fs::read_to_string(&stdout)
                .unwrap_or_default()
                .contains("vxtund ready")
        });
        d
    }

    fn wait_for(&mut self, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("vxtund exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "vxtund timed out:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Its OpenFlow management socket (unless the config named its own targets).
    pub fn mgmt_socket(&self) -> PathBuf {
        self.dir.join("of.mgmt")
    }

    /// Its config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("vxtund.toml")
    }

    /// Sends SIGHUP and waits until the log has one more line containing `outcome`.
    pub fn reload(&mut self, outcome: &str) {
        let before = self.log().matches(outcome).count();
        // SAFETY: kill with a PID of our own child and a valid signal number.
        unsafe { libc::kill(self.pid(), libc::SIGHUP) };
        let log = self.dir.join("stderr");
        self.wait_for(|| {
            fs::read_to_string(&log)
                .unwrap_or_default()
                .matches(outcome)
                .count()
                > before
        });
    }

    /// Its control socket.
    pub fn control_socket(&self) -> PathBuf {
        self.dir.join("ctl.sock")
    }

    /// What `vxtunctl show` says of it (empty if it does not answer).
    pub fn show(&self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_vxtunctl"))
            .arg("-s")
            .arg(self.control_socket())
            .arg("show")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// The ready line.
    pub fn ready_line(&self) -> String {
        fs::read_to_string(self.dir.join("stdout")).unwrap_or_default()
    }

    /// Asks for the counters (SIGUSR1) and returns them: `port N NAME` lines and `drops`, each a
    /// map from counter name to value.
    pub fn stats(&mut self) -> HashMap<String, HashMap<String, u64>> {
        let before = self.log().matches(" drops:").count();
        // SAFETY: kill with a PID of our own child and a valid signal number.
        unsafe { libc::kill(self.pid(), libc::SIGUSR1) };
        let path = self.dir.join("stderr");
        self.wait_for(|| {
            fs::read_to_string(&path)
                .unwrap_or_default()
                .matches(" drops:")
                .count()
                > before
        });
        let log = self.log();
        let mut stats = HashMap::new();
        let lines: Vec<&str> = log.lines().collect();
        let last_drops = lines
            .iter()
            .rposition(|l| l.contains(" drops:"))
            .expect("a drops line");
        for line in &lines[..=last_drops] {
            if !line.contains("vxtund::stats") {
                continue;
            }
            let Some(i) = line
                .find("port ")
                .or_else(|| line.find("drops:"))
                .or_else(|| line.find("offload:"))
            else {
                continue;
            };
            let text = &line[i..];
            let (head, counters) = text.split_once(':').unwrap();
            let map = counters
                .split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
                .collect();
            stats.insert(head.trim().to_string(), map);
        }
        stats
    }

    /// Waits up to 10 s for it to exit by itself; returns its exit status and its log.
    pub fn wait_exit(mut self) -> (ExitStatus, String) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return (status, self.log());
            }
            if Instant::now() > deadline {
                self.child = Some(child);
                panic!("vxtund did not exit:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` and waits for it to exit; returns its exit status and its log.
    pub fn signal_and_wait(self, signal: i32) -> (ExitStatus, String) {
        // SAFETY: kill with the PID of our own, not yet reaped child.
        unsafe { libc::kill(self.pid(), signal) };
        self.wait_exit()
    }

    /// Stops it with SIGTERM and returns its exit status.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill with a PID of our own, not yet reaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A helper process (iperf3 server, capture) killed by PID and reaped on drop.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `bytes` over TCP from `from` to `addr` (on `to`), each side bounded in time; Err with
/// what happened unless the receiver got exactly what was sent (count and SHA-256).
pub fn tcp_transfer(from: &Netns, to: &Netns, addr: &str, bytes: usize) -> Result<(), String> {
    use std::io::BufRead;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts/tcp_check.py");
    let mut rx = KillOnDrop(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &to.name,
                "timeout",
                "90",
                "/usr/bin/python3",
            ])
            .arg(&script)
            .args(["recv", addr, "7000"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = std::io::BufReader::new(rx.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line.trim() != "ready" {
        return Err(format!("receiver: {line}"));
    }
    let tx = Command::new("ip")
        .args([
            "netns",
            "exec",
            &from.name,
            "timeout",
            "60",
            "/usr/bin/python3",
        ])
        .arg(&script)
        .args(["send", addr, "7000", &bytes.to_string()])
        .output()
        .unwrap();
    if !tx.status.success() {
        return Err(format!(
            "sender to {addr} failed or stalled ({}): {}",
            tx.status,
            String::from_utf8_lossy(&tx.stderr)
        ));
    }
    let mut received = String::new();
    out.read_line(&mut received).unwrap();
    let sent = String::from_utf8_lossy(&tx.stdout);
    if received.trim() != sent.trim() || !sent.starts_with(&format!("{bytes} ")) {
        return Err(format!("sent {sent}, received {received}"));
    }
    Ok(())
}
