//! HTTPS: loading or generating the certificate, and the TLS accept loop.
//!
//! rustls with the `ring` provider, passed explicitly (no process-wide
//! default is needed). The listener speaks TLS only: a plain-HTTP request
//! fails the handshake and the connection is closed; a bad handshake is
//! logged at debug and never stops the server.

use crate::NodeConfig;
use anyhow::{Context as _, bail};
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Names the development certificate is valid for.
const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A loaded server certificate.
pub(crate) struct Tls {
    pub(crate) config: Arc<ServerConfig>,
    /// SHA-256 of the end-entity certificate (DER), `AA:BB:…`.
    pub(crate) fingerprint: String,
}

/// The TLS setup `config` asks for, `None` for plain HTTP. Every mistake
/// (one of cert/key alone, self-signed together with a cert, unreadable or
/// mismatched files) is an error here, before the node listens.
pub(crate) fn load(config: &NodeConfig) -> anyhow::Result<Option<Tls>> {
    let (cert, key) = match (&config.tls_cert, &config.tls_key, config.tls_self_signed) {
        (None, None, false) => return Ok(None),
        (Some(_), _, true) | (_, Some(_), true) => bail!(
            "TLS: choose either a self-signed certificate (--tls-self-signed) or your own \
             (--tls-cert/--tls-key), not both"
        ),
        (Some(_), None, _) => {
            bail!("TLS: --tls-cert is set but --tls-key is not (both are needed)")
        }
        (None, Some(_), _) => {
            bail!("TLS: --tls-key is set but --tls-cert is not (both are needed)")
        }
        (Some(cert), Some(key), false) => (cert.clone(), key.clone()),
        (None, None, true) => self_signed_files(&config.data_dir)?,
    };
    let certs = read_certs(&cert)?;
    let key_der = read_key(&key)?;
    let fingerprint = fingerprint(&certs[0]);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS: no protocol version available")?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => anyhow::anyhow!(
                "TLS: the key {} does not match the certificate {}",
                key.display(),
                cert.display()
            ),
            e => anyhow::anyhow!(
                "TLS: cannot use the certificate {} with the key {}: {e}",
                cert.display(),
                key.display()
            ),
        })?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(Tls {
        config: Arc::new(server),
        fingerprint,
    }))
}

/// Serves `app` over TLS on `listener` until `shutdown` resolves, then lets
/// open connections finish their requests. Connection limits apply before
/// the handshake (`listener.rs`); a handshake counts against the
/// header-read timeout.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    tls: &Tls,
    connections: &crate::listener::Connections,
    app: axum::extract::connect_info::IntoMakeServiceWithConnectInfo<axum::Router, SocketAddr>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(tls.config.clone()))
        // A backstop: the listener's own clock closes slow handshakes first.
        .handshake_timeout(connections.limits().header_read * 2)
        .acceptor(connections.guard(false));
    crate::listener::serve(listener, connections, acceptor, app, shutdown).await
}

/// `AA:BB:…`: SHA-256 of a certificate's DER bytes.
pub(crate) fn fingerprint(cert: &[u8]) -> String {
    let digest = Sha256::digest(cert);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("TLS: cannot read the certificate {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("TLS: {} is not a PEM certificate", path.display()))?;
    if certs.is_empty() {
        bail!("TLS: no PEM certificate in {}", path.display());
    }
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("TLS: cannot read the key {}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem)
        .with_context(|| format!("TLS: no PEM private key in {}", path.display()))
}

/// `<data_dir>/tls/self-signed.{crt,key}`: reused when both exist, else
/// generated (key mode 0600).
fn self_signed_files(data_dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let cert = dir.join("self-signed.crt");
    let key = dir.join("self-signed.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("TLS: cannot create {}", dir.display()))?;
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|s| s.to_string()).collect();
    let generated = rcgen::generate_simple_self_signed(names)
        .context("TLS: cannot generate a self-signed certificate")?;
    write_file(
        &key,
        generated.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_file(&cert, generated.cert.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key))
}

/// Writes atomically (temp file + rename) with `mode` on Unix.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts
        .open(&tmp)
        .with_context(|| format!("TLS: cannot write {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("TLS: cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("TLS: cannot write {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> NodeConfig {
        NodeConfig {
            data_dir: dir.to_path_buf(),
            ..NodeConfig::default()
        }
    }

    #[test]
    fn self_signed_is_generated_once_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        cfg.tls_self_signed = true;
        let first = load(&cfg).unwrap().unwrap();
        let key = tmp.path().join("tls/self-signed.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = load(&cfg).unwrap().unwrap();
        assert_eq!(first.fingerprint, second.fingerprint);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
    }

    #[test]
    fn bad_combinations_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = config(tmp.path());
        assert!(load(&cfg).unwrap().is_none());
        cfg.tls_cert = Some(tmp.path().join("a.crt"));
        let e = load(&cfg).err().unwrap().to_string();
        assert!(e.contains("--tls-key is not"), "{e}");
        cfg.tls_self_signed = true;
        let e = load(&cfg).err().unwrap().to_string();
        assert!(e.contains("not both"), "{e}");
        cfg.tls_self_signed = false;
        cfg.tls_key = Some(tmp.path().join("a.key"));
        let e = format!("{:#}", load(&cfg).err().unwrap());
        assert!(e.contains("cannot read the certificate"), "{e}");
    }
}
