//! An OpenFlow PKI for the TLS tests, made by Open vSwitch's own `ovs-pki` (openvswitch-common)
//! in the test's temp dir: a switch CA and a controller CA, as `ovs-pki init` makes them, and
//! certificates whose names are not DNS names (`CN=NAME id:<uuid>`). vxtund (the switch) holds
//! a switch certificate and trusts the controller CA; ovs-ofctl and the controllers hold
//! controller certificates and trust the switch CA, as in Open vSwitch's own set-up.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A PKI in its own directory, removed on drop.
pub struct Pki {
    pub dir: PathBuf,
}

/// A private key and its certificate.
pub struct Pair {
    pub key: PathBuf,
    pub cert: PathBuf,
}

impl Pki {
    /// `ovs-pki init` and a switch and a controller certificate; `None`, with a loud SKIPPED,
    /// without ovs-pki or openssl.
    pub fn new(test: &str) -> Option<Pki> {
        let tools = [("ovs-pki", "openvswitch-common"), ("openssl", "openssl")];
        if !super::require_tools(test, &tools) {
            return None;
        }
        let dir = std::env::temp_dir().join(super::unique("pki"));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        pki.ovs_pki(&["init"]);
        pki.ovs_pki(&["req+sign", "switch", "switch"]);
        pki.ovs_pki(&["req+sign", "ctl", "controller"]);
        Some(pki)
    }

    fn ovs_pki(&self, args: &[&str]) {
        ovs_pki_in(&self.dir, args)
    }

    /// vxtund's key and certificate (signed by the switch CA).
    pub fn switch(&self) -> Pair {
        self.pair("switch")
    }

    /// ovs-ofctl's and the controllers' key and certificate (signed by the controller CA).
    pub fn controller(&self) -> Pair {
        self.pair("ctl")
    }

    /// The CA that signs switches: what controllers and ovs-ofctl trust (`-C`).
    pub fn switch_ca(&self) -> PathBuf {
        self.dir.join("pki/switchca/cacert.pem")
    }

    /// The CA that signs controllers: vxtund's `ca_cert`.
    pub fn controller_ca(&self) -> PathBuf {
        self.dir.join("pki/controllerca/cacert.pem")
    }

    fn pair(&self, name: &str) -> Pair {
        Pair {
            key: self.dir.join(format!("{name}-privkey.pem")),
            cert: self.dir.join(format!("{name}-cert.pem")),
        }
    }

    /// A controller certificate from the right CA that expired in 2021.
    pub fn expired_controller(&self) -> Pair {
        self.ovs_pki(&["req", "old"]);
        let pair = self.pair("old");
        let dates = [
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20210101000000Z",
        ];
        self.sign_controller(&self.dir.join("old-req.pem"), &pair.cert, &dates);
        pair
    }

    /// A controller certificate from another PKI (`ovs-pki init` elsewhere), as `other-*.pem`
    /// in this PKI's directory; with `switch_ca`, that PKI's switch CA instead.
    pub fn stranger(&self) -> (Pair, PathBuf) {
        let other = self.dir.join("other");
        std::fs::create_dir_all(&other).unwrap();
        ovs_pki_in(&other, &["init"]);
        ovs_pki_in(&other, &["req+sign", "ctl", "controller"]);
        let pair = self.pair("other");
        std::fs::copy(other.join("ctl-privkey.pem"), &pair.key).unwrap();
        std::fs::copy(other.join("ctl-cert.pem"), &pair.cert).unwrap();
        let ca = self.dir.join("other-switchca.pem");
        std::fs::copy(other.join("pki/switchca/cacert.pem"), &ca).unwrap();
        (pair, ca)
    }

    /// A controller certificate from the right CA but over vxtund's 16 KiB limit (a
    /// subjectAltName of 2,000 names), as `big-*.pem`.
    pub fn oversized_controller(&self) -> Pair {
        let names: Vec<String> = (0..2000).map(|i| format!("DNS:n{i}.example")).collect();
        let pair = self.pair("big");
        let req = self.dir.join("big-req.pem");
        let out = Command::new("openssl")
            .args(["req", "-new", "-newkey", "rsa:2048", "-nodes"])
            .args(["-subj", "/O=Open vSwitch/CN=big"])
            .arg("-addext")
            .arg(format!("subjectAltName={}", names.join(",")))
            .arg("-keyout")
            .arg(&pair.key)
            .arg("-out")
            .arg(&req)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.sign_controller(&req, &pair.cert, &[]);
        pair
    }

    /// The good controller certificate followed by 60 copies of the switch's: a chain over
    /// TLS's 64 KiB handshake message (`chain-cert.pem`, the key is `ctl-privkey.pem`).
    pub fn oversized_chain(&self) -> PathBuf {
        let mut pem = std::fs::read_to_string(self.controller().cert).unwrap();
        let extra = std::fs::read_to_string(self.switch().cert).unwrap();
        for _ in 0..60 {
            pem.push_str(&extra);
        }
        let path = self.dir.join("chain-cert.pem");
        std::fs::write(&path, pem).unwrap();
        path
    }

    fn sign_controller(&self, req: &Path, cert: &Path, dates: &[&str]) {
        let out = Command::new("openssl")
            .args(["ca", "-config", "ca.cnf", "-batch"])
            .args(dates)
            .arg("-in")
            .arg(req)
            .arg("-out")
            .arg(cert)
            .current_dir(self.dir.join("pki/controllerca"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl ca: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The `[openflow]` lines that give vxtund its switch key and certificate and make it trust
    /// the controller CA.
    pub fn vxtund_keys(&self) -> String {
        let switch = self.switch();
        format!(
            "private_key = \"{}\"\ncertificate = \"{}\"\nca_cert = \"{}\"\n",
            switch.key.display(),
            switch.cert.display(),
            self.controller_ca().display()
        )
    }

    /// ovs-ofctl's or ovs-testcontroller's options: `pair` to prove who it is, trusting `ca`.
    pub fn ovs_options(pair: &Pair, ca: &Path) -> Vec<String> {
        vec![
            "-p".into(),
            pair.key.display().to_string(),
            "-c".into(),
            pair.cert.display().to_string(),
            "-C".into(),
            ca.display().to_string(),
        ]
    }
}

/// `ovs-pki ARGS` with its PKI in `dir/pki`, writing what it makes into `dir`.
fn ovs_pki_in(dir: &Path, args: &[&str]) {
    let out = Command::new("ovs-pki")
        .arg(format!("--dir={}", dir.join("pki").display()))
        .arg(format!("--log={}", dir.join("ovs-pki.log").display()))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ovs-pki {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
