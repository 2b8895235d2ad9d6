//! OpenFlow over TLS (`pssl:` and `ssl:`): the PEM files of `[openflow]` read into rustls
//! configurations for both sides, and the certificate checks, as Open vSwitch makes them.
//!
//! Both sides prove who they are (mutual TLS): a server asks for and requires a client
//! certificate, a client presents its own. A peer's certificate must chain to `ca_cert` and be
//! within its validity period; nothing else is asked of it. In particular, as in Open vSwitch,
//! no host name is checked: `ovs-pki` issues certificates whose names are not DNS names
//! (`CN=sc id:<uuid>`, the same in a DNS-type subjectAltName), and a controller is named by
//! its IP address. So the client side uses [`ChainVerifier`], which checks the chain against
//! `ca_cert` and not the name; the server side uses rustls's client verifier (which never
//! checks a name). Both bound the certificates a peer may send ([`check_chain_size`]), on top
//! of rustls's own limit of 64 KiB for one handshake message.
//!
//! Sessions are never resumed: OpenFlow connections last, and a resumed session would skip
//! the certificate check against a `ca_cert` that a reload may have changed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, ParsedCertificate, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, InconsistentKeys,
    RootCertStore, ServerConfig, SignatureScheme,
};

use crate::config::TlsFiles;

/// The most certificates a peer may send: its own and intermediates.
pub const MAX_CHAIN_CERTS: usize = 8;
/// The largest certificate a peer may send (DER). `ovs-pki`'s are about 1.3 KiB.
pub const MAX_CERT_LEN: usize = 16 * 1024;
/// The largest PEM file read.
const MAX_PEM_FILE: u64 = 1024 * 1024;

/// The TLS configurations of both sides, built from the files of `[openflow]`.
#[derive(Debug, Clone)]
pub struct Material {
    /// For `pssl:` listeners.
    pub server: Arc<ServerConfig>,
    /// For `ssl:` controllers.
    pub client: Arc<ClientConfig>,
    /// What was read, for the log: how many certificates, from which files.
    pub summary: String,
}

/// Which of the three files an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// `private_key`.
    PrivateKey,
    /// `certificate`.
    Certificate,
    /// `ca_cert`.
    CaCert,
}

impl TlsFile {
    /// The config key, as `section.key`.
    pub fn key(self) -> &'static str {
        match self {
            TlsFile::PrivateKey => "openflow.private_key",
            TlsFile::Certificate => "openflow.certificate",
            TlsFile::CaCert => "openflow.ca_cert",
        }
    }
}

/// A TLS file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError {
    /// The file.
    pub file: TlsFile,
    /// Its path.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} `{}`: {}",
            self.file.key(),
            self.path.display(),
            self.message
        )
    }
}

impl std::error::Error for TlsError {}

impl Material {
    /// Reads the three PEM files and builds both sides' configurations: the key must be one
    /// rustls signs with (RSA, ECDSA P-256/P-384, Ed25519) and match the certificate, and
    /// `ca_cert` must hold at least one usable CA certificate.
    pub fn load(files: &TlsFiles) -> Result<Material, TlsError> {
        let fail = |file, path: &Path, message: String| TlsError {
            file,
            path: path.to_owned(),
            message,
        };
        // ring rather than aws-lc-rs: it builds from a little C with no cmake. It has no
        // post-quantum key exchange, which OVS's OpenSSL 3.0 peers do not offer either.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let pem = read_pem(&files.certificate)
            .map_err(|m| fail(TlsFile::Certificate, &files.certificate, m))?;
        let chain =
            certificates(&pem).map_err(|m| fail(TlsFile::Certificate, &files.certificate, m))?;

        let pem = read_pem(&files.private_key)
            .map_err(|m| fail(TlsFile::PrivateKey, &files.private_key, m))?;
        let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
            fail(
                TlsFile::PrivateKey,
                &files.private_key,
                format!("no private key in it (PEM `BEGIN PRIVATE KEY` or the like): {e}"),
            )
        })?;
        let signing = provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| {
                fail(
                    TlsFile::PrivateKey,
                    &files.private_key,
                    format!("not a key TLS can sign with: {e}"),
                )
            })?;
        match CertifiedKey::new(chain.clone(), signing).keys_match() {
            // A key whose public half cannot be derived is checked by the handshake instead.
            Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
            Err(e) => {
                return Err(fail(
                    TlsFile::Certificate,
                    &files.certificate,
                    format!("does not go with private_key: {e}"),
                ))
            }
        }

        let pem = read_pem(&files.ca_cert).map_err(|m| fail(TlsFile::CaCert, &files.ca_cert, m))?;
        let cas = certificates(&pem).map_err(|m| fail(TlsFile::CaCert, &files.ca_cert, m))?;
        let mut roots = RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(cas);
        if added == 0 {
            return Err(fail(
                TlsFile::CaCert,
                &files.ca_cert,
                "no usable CA certificate in it".into(),
            ));
        }
        let roots = Arc::new(roots);

        let build = |e: rustls::Error| {
            fail(
                TlsFile::CaCert,
                &files.ca_cert,
                format!("cannot build a TLS configuration: {e}"),
            )
        };
        let inner =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| {
                    fail(
                        TlsFile::CaCert,
                        &files.ca_cert,
                        format!("cannot check clients with it: {e}"),
                    )
                })?;
        let mut server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(build)?
            .with_client_cert_verifier(Arc::new(ClientVerifier { inner }))
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(build)?;
        server.session_storage = Arc::new(NoServerSessionStorage {});
        server.send_tls13_tickets = 0;

        let verifier = ChainVerifier {
            roots,
            provider: Arc::clone(&provider),
        };
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(build)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_auth_cert(chain.clone(), key)
            .map_err(build)?;
        client.resumption = Resumption::disabled();

        let summary = format!(
            "TLS: certificate {} ({} in its chain), CA certificates {} ({added}{})",
            files.certificate.display(),
            chain.len(),
            files.ca_cert.display(),
            match ignored {
                0 => String::new(),
                n => format!(", {n} unparsable ignored"),
            }
        );
        Ok(Material {
            server: Arc::new(server),
            client: Arc::new(client),
            summary,
        })
    }
}

/// Refuses more than [`MAX_CHAIN_CERTS`] certificates, or one over [`MAX_CERT_LEN`], before
/// any is parsed.
pub fn check_chain_size(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Result<(), rustls::Error> {
    let too_long = std::iter::once(end_entity)
        .chain(intermediates)
        .any(|c| c.len() > MAX_CERT_LEN);
    if intermediates.len() + 1 > MAX_CHAIN_CERTS || too_long {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        ));
    }
    Ok(())
}

/// The server's certificate check on the client side (`ssl:` controllers): the chain, to
/// `ca_cert`, within its validity period, and no name (see the module's text).
#[derive(Debug)]
pub struct ChainVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        check_chain_size(end_entity, intermediates)?;
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The client's certificate check on the server side (`pssl:`): rustls's (the chain to
/// `ca_cert`, the validity period, a client certificate required), after
/// [`check_chain_size`].
#[derive(Debug)]
struct ClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        check_chain_size(end_entity, intermediates)?;
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Reads a PEM file of at most [`MAX_PEM_FILE`] bytes.
fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut pem = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut pem)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if pem.len() as u64 > MAX_PEM_FILE {
        return Err(format!("larger than {MAX_PEM_FILE} bytes: not a PEM file"));
    }
    Ok(pem)
}

/// Every certificate of a PEM file; at least one.
fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not a PEM file: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate (PEM `BEGIN CERTIFICATE`) in it".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_too_long_or_certificates_too_big_are_refused_before_parsing() {
        let small = CertificateDer::from(vec![0x30; 1200]);
        let big = CertificateDer::from(vec![0x30; MAX_CERT_LEN + 1]);
        assert!(check_chain_size(&small, &[]).is_ok());
        let seven = vec![small.clone(); MAX_CHAIN_CERTS - 1];
        assert!(check_chain_size(&small, &seven).is_ok());
        let eight = vec![small.clone(); MAX_CHAIN_CERTS];
        assert!(check_chain_size(&small, &eight).is_err());
        assert!(check_chain_size(&big, &[]).is_err());
        assert!(check_chain_size(&small, &[big]).is_err());
    }

    #[test]
    fn files_that_are_not_pem_say_which_and_why() {
        let dir = std::env::temp_dir().join(format!("vxtund-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let files = TlsFiles {
            private_key: empty.clone(),
            certificate: empty.clone(),
            ca_cert: empty.clone(),
        };
        let e = Material::load(&files).unwrap_err();
        assert_eq!(e.file, TlsFile::Certificate);
        assert!(e.to_string().contains("no certificate"), "{e}");
        let missing = TlsFiles {
            certificate: dir.join("nowhere.pem"),
            ..files
        };
        let e = Material::load(&missing).unwrap_err();
        assert!(e.message.starts_with("cannot read it"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
