//! The Debian package, as a user meets it: `scripts/package.sh` builds it; lintian finds no
//! error and no warning (docs/packaging.md says why there are none to keep); `apt-get
//! install ./vxtund_*.deb` puts the binaries, manuals, unit, docs and examples where Debian
//! users look and enables nothing; the installed unit passes `systemd-analyze verify`; `man -w`
//! finds both manuals; the installed `vxtund --check` accepts every packaged example; a config
//! the user wrote in /etc/vxtund survives an upgrade; `apt-get purge` leaves nothing the package
//! owned. Needs root (it installs a package); the package is purged on drop, so also when an
//! assertion fails.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const PACKAGE: &str = "vxtund";

#[test]
fn the_debian_package_builds_installs_upgrades_and_purges_cleanly() {
    let name = "the_debian_package_builds_installs_upgrades_and_purges_cleanly";
    if !can_run(name) {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();

    // Build: the path is the script's last line.
    let built = run(&root.join("scripts/package.sh").to_string_lossy(), &[]);
    let stdout = String::from_utf8_lossy(&built.stdout);
    let deb = PathBuf::from(stdout.lines().last().expect("package.sh printed nothing"));
    assert!(deb.is_file(), "{} is not a file", deb.display());
    let built_in = started.elapsed();

    // The version follows Cargo.toml (debian/changelog may add a `+...` of its own).
    let version = text(run("dpkg-deb", &["--field", s(&deb), "Version"]));
    let version = version.trim();
    assert!(
        version == env!("CARGO_PKG_VERSION")
            || version.starts_with(&format!("{}+", env!("CARGO_PKG_VERSION"))),
        "package {version}, crate {}",
        env!("CARGO_PKG_VERSION")
    );

    // Contents, where Debian users look for them.
    let contents = contents(&deb);
    for path in [
        "/usr/sbin/vxtund",
        "/usr/sbin/vxtunctl",
        "/usr/share/man/man8/vxtund.8.gz",
        "/usr/share/man/man8/vxtunctl.8.gz",
        "/lib/systemd/system/vxtund@.service",
        "/usr/share/doc/vxtund/README.md",
        "/usr/share/doc/vxtund/docs/scenario.md",
        "/usr/share/doc/vxtund/copyright",
        "/usr/share/doc/vxtund/changelog.gz",
        "/usr/share/doc/vxtund/examples/seg1.toml",
        "/usr/share/doc/vxtund/examples/seg2.toml",
        "/usr/share/doc/vxtund/examples/seg3.toml",
        "/usr/share/doc/vxtund/examples/mesh/seg1.toml",
        "/usr/share/doc/vxtund/examples/osken/learning_switch.py",
        "/etc/vxtund",
    ] {
        assert!(contents.contains(path), "{path} not in {contents:#?}");
    }
    // The crates' list, compressed by dh_compress once it passes 4 kB (Debian policy 12.3).
    assert!(
        ["crates.txt", "crates.txt.gz"]
            .iter()
            .any(|f| contents.contains(&format!("/usr/share/doc/vxtund/{f}"))),
        "no crates list in {contents:#?}"
    );
    // /etc/vxtund is an empty directory for the user's configs: no conffile in it.
    assert!(
        !contents.iter().any(|p| p.starts_with("/etc/vxtund/")),
        "{contents:#?}"
    );
    let conffiles = text(run("dpkg-deb", &["--info", s(&deb)]));
    assert!(!conffiles.contains(" conffiles"), "{conffiles}");

    // lintian: no error and no warning (an override, should one ever be needed, would go in
    // debian/vxtund.lintian-overrides with its reason). Run on the .changes: the .deb, its
    // -dbgsym and the .buildinfo.
    let changes = deb.with_extension("changes");
    let lintian = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--show-overrides"])
        .arg(&changes)
        .output()
        .expect("lintian (scripts/setup.sh installs it)");
    let report = format!("{}{}", text_ref(&lintian.stdout), text_ref(&lintian.stderr));
    eprintln!("lintian {}:\n{report}", changes.display());
    assert!(lintian.status.success(), "lintian failed:\n{report}");
    assert!(
        !report
            .lines()
            .any(|l| l.starts_with("E: ") || l.starts_with("W: ")),
        "{report}"
    );

    // What exists before installing: directories shared with other packages stay after purge.
    let existed: BTreeSet<String> = contents
        .iter()
        .filter(|p| Path::new(p).exists())
        .cloned()
        .collect();

    let mut installed = Installed::new();
    installed.apt_install(&deb);

    // Nothing enabled or started: a template unit has no instance until the user makes one.
    assert_eq!(enabled_links(), Vec::<PathBuf>::new(), "enabled on install");

    // The installed unit, named as an instance, passes systemd's own check (which also finds
    // its ExecStart= binaries).
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no", "vxtund@seg1.service"])
        .output()
        .expect("systemd-analyze (scripts/setup.sh installs systemd)");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        text_ref(&verify.stdout),
        text_ref(&verify.stderr)
    );

    // man finds both pages, the installed ones (among others a from-source install may have
    // put in /usr/local).
    for page in ["vxtund", "vxtunctl"] {
        let found = text(run("man", &["--all", "--where", page]));
        let ours = format!("/usr/share/man/man8/{page}.8.gz");
        assert!(found.lines().any(|l| l == ours), "{ours} not in:\n{found}");
    }

    // The installed daemon accepts every packaged example.
    let examples = "/usr/share/doc/vxtund/examples";
    let mut checked = 0;
    for dir in [examples.to_owned(), format!("{examples}/mesh")] {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                run("/usr/sbin/vxtund", &["--config", s(&path), "--check"]);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 6, "seg1..3 and mesh/seg1..3");

    // A config the user wrote in /etc/vxtund, where the unit reads it, survives an upgrade to
    // a newer version of the package...
    let config = installed.user_config(&format!("{examples}/seg2.toml"));
    let before = fs::read(&config).unwrap();
    run("/usr/sbin/vxtund", &["--config", s(&config), "--check"]);
    let newer = installed.newer_version_of(&deb, version);
    installed.apt_install(&newer);
    assert_eq!(
        text(run(
            "dpkg-query",
            &["--show", "--showformat=${Version}", PACKAGE]
        )),
        format!("{version}+upgradetest")
    );
    assert_eq!(fs::read(&config).unwrap(), before, "{}", config.display());
    assert_eq!(enabled_links(), Vec::<PathBuf>::new(), "enabled on upgrade");

    // ...and a purge does not touch it either: it is the user's. dpkg takes everything the
    // package owned but /etc/vxtund, which is not empty.
    installed.apt(&["purge", "--yes", PACKAGE]);
    assert_eq!(fs::read(&config).unwrap(), before, "{}", config.display());
    assert_eq!(
        left_of(&contents, &existed),
        ["/etc/vxtund"],
        "left after purge"
    );
    fs::remove_file(&config).unwrap();
    fs::remove_dir("/etc/vxtund").unwrap();

    // Without a config of the user's, a purge leaves nothing of the package at all.
    installed.apt_install(&deb);
    installed.apt(&["purge", "--yes", PACKAGE]);
    assert_eq!(
        left_of(&contents, &existed),
        Vec::<String>::new(),
        "left after purge"
    );
    let status = Command::new("dpkg-query")
        .args(["--show", "--showformat=${db:Status-Status}", PACKAGE])
        .output()
        .unwrap();
    assert!(
        !status.status.success() || text_ref(&status.stdout) == "not-installed",
        "dpkg still knows {PACKAGE}: {}",
        text_ref(&status.stdout)
    );
    assert!(
        !Path::new("/var/lib/dpkg/info/vxtund.list").exists(),
        "dpkg's file list is left"
    );
    eprintln!(
        "the package built in {:.0?}; the whole test took {:.0?}",
        built_in,
        started.elapsed()
    );
}

/// Root, the packaging tools, and no vxtund package of the user's to replace. Otherwise says
/// so loudly (and fails under CI, which must run it).
fn can_run(test: &str) -> bool {
    let tools = [
        ("dpkg-buildpackage", "dpkg-dev"),
        ("dh", "debhelper"),
        ("lintian", "lintian"),
        ("man", "man-db"),
        ("apt-get", "apt"),
        ("systemd-analyze", "systemd"),
    ];
    if !common::require_root(test) || !common::require_tools(test, &tools) {
        return false;
    }
    if is_installed() {
        let why = format!(
            "a {PACKAGE} package is installed here, and this test would replace and purge it"
        );
        return common::skip(test, &why);
    }
    true
}

/// What the package installed, removed again on drop (also when the test fails).
struct Installed {
    scratch: PathBuf,
    user_config: Option<PathBuf>,
}

impl Installed {
    fn new() -> Installed {
        let scratch = std::env::temp_dir().join(format!("vxtund-package-{}", std::process::id()));
        fs::create_dir_all(&scratch).unwrap();
        Installed {
            scratch,
            user_config: None,
        }
    }

    /// `apt-get install ./x.deb`, as the README says.
    fn apt_install(&mut self, deb: &Path) {
        self.apt(&["install", "--yes", s(deb)]);
    }

    /// apt-get; panics if it fails.
    fn apt(&mut self, args: &[&str]) {
        let out = apt(args);
        assert!(out.status.success(), "apt-get {}: {}", args[0], both(&out));
    }

    /// A copy of `example` in /etc/vxtund with the user's edit.
    fn user_config(&mut self, example: &str) -> PathBuf {
        let path = PathBuf::from(format!("/etc/vxtund/pkgtest{}.toml", std::process::id()));
        let mut text = fs::read_to_string(example).unwrap();
        text.push_str("\n# edited by the user\n");
        fs::write(&path, text).unwrap();
        self.user_config = Some(path.clone());
        path
    }

    /// `deb` as version `version+upgradetest`: the same files, for dpkg a newer package, so
    /// installing it runs the upgrade path of the maintainer scripts.
    fn newer_version_of(&self, deb: &Path, version: &str) -> PathBuf {
        let tree = self.scratch.join("tree");
        let _ = fs::remove_dir_all(&tree);
        run("dpkg-deb", &["--raw-extract", s(deb), s(&tree)]);
        let control = tree.join("DEBIAN/control");
        let text = fs::read_to_string(&control).unwrap().replace(
            &format!("\nVersion: {version}\n"),
            &format!("\nVersion: {version}+upgradetest\n"),
        );
        assert!(text.contains("+upgradetest"), "{text}");
        fs::write(&control, text).unwrap();
        let newer = self.scratch.join("vxtund_upgradetest.deb");
        run(
            "dpkg-deb",
            &["--build", "--root-owner-group", s(&tree), s(&newer)],
        );
        newer
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        if is_installed() {
            let _ = apt(&["purge", "--yes", PACKAGE]);
        }
        if let Some(config) = &self.user_config {
            let _ = fs::remove_file(config);
            let _ = fs::remove_dir("/etc/vxtund");
        }
        let _ = fs::remove_dir_all(&self.scratch);
    }
}

/// apt-get, non-interactive, waiting for another apt or dpkg to finish rather than failing.
fn apt(args: &[&str]) -> Output {
    Command::new("apt-get")
        .args(["-o", "DPkg::Lock::Timeout=300", "-q"])
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("apt-get")
}

/// The paths in `deb`, as absolute paths without a trailing slash.
fn contents(deb: &Path) -> BTreeSet<String> {
    text(run("dpkg-deb", &["--contents", s(deb)]))
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').trim_end_matches('/').to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The paths of `contents` that exist now but did not before the package was installed.
fn left_of(contents: &BTreeSet<String>, existed: &BTreeSet<String>) -> Vec<String> {
    contents
        .iter()
        .filter(|p| !existed.contains(*p) && Path::new(p).symlink_metadata().is_ok())
        .cloned()
        .collect()
}

/// Anything that would start vxtund by itself: links in /etc/systemd/system and the state
/// deb-systemd-helper keeps of what it enabled.
fn enabled_links() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in [
        "/etc/systemd/system",
        "/var/lib/systemd/deb-systemd-helper-enabled",
    ] {
        walk(Path::new(dir), &mut |p| {
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("vxtund"))
            {
                found.push(p.to_owned());
            }
        });
    }
    found
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        f(&path);
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk(&path, f);
        }
    }
}

fn is_installed() -> bool {
    Command::new("dpkg-query")
        .args(["--show", "--showformat=${db:Status-Status}", PACKAGE])
        .output()
        .is_ok_and(|o| o.status.success() && text_ref(&o.stdout) != "not-installed")
}

/// Runs a command; panics with its output if it fails.
fn run(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        both(&out)
    );
    out
}

fn both(out: &Output) -> String {
    format!("{}{}", text_ref(&out.stdout), text_ref(&out.stderr))
}

fn text(out: Output) -> String {
    String::from_utf8(out.stdout).unwrap()
}

fn text_ref(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn s(path: &(impl AsRef<Path> + ?Sized)) -> &str {
    path.as_ref().to_str().unwrap()
}
