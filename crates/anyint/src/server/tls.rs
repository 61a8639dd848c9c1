//! TLS where the gateway faces clients itself (`[server] tls_cert_file` / `tls_key_file`):
//! rustls with ring (the stack the upstream client already links), HTTP/2 or HTTP/1.1 by ALPN,
//! and a certificate that is reloaded when its files change, without a restart.
//!
//! The handshake reads the current certificate through [`Reloading`], so a swap takes effect
//! on the next connection while open ones keep theirs. A reload that fails (a half-written
//! file, a key that does not match) is logged and the previous certificate stays: renewals
//! that write the two files one after the other converge on the next check.

use std::future::Future as _;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::ring::sign::any_supported_type;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::error::Error;

/// How often the files' modification times are checked.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// The acceptor and the certificate it serves.
pub struct Tls {
    acceptor: TlsAcceptor,
    certs: Arc<Reloading>,
}

impl Tls {
    /// Loads the certificate chain and key; an unreadable or mismatched pair is a start-up
    /// error naming the file.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, Error> {
        let certs = Arc::new(Reloading {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(load_pair(cert, key)?)),
            stamp: Mutex::new(stamp(cert, key)),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(Error::internal)?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certs,
        })
    }

    /// The acceptor for new connections.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Watches the files and swaps the certificate when they change.
    pub fn spawn_reload(&self) -> JoinHandle<()> {
        let certs = self.certs.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_CHECK);
            loop {
                tick.tick().await;
                certs.reload_if_changed();
            }
        })
    }
}

/// The protocol a connection speaks, as its first bytes or its handshake told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// How an HTTP/2 connection without TLS begins (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// An accepted socket, plain or TLS. The handshake runs on the connection's own task (driven
/// by [`Transport::protocol`] before hyper starts, or by the first reads), so a slow handshake
/// holds up no one else, and the connection's idle timer (`server::conn`) bounds it like any
/// silence.
pub(crate) enum Transport {
    /// Plain HTTP.
    Plain(TcpStream),
    /// TLS, handshake in progress.
    Handshake(Box<tokio_rustls::Accept<TcpStream>>),
    /// TLS, established.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// The handshake failed; the connection only errors from now on.
    Failed,
}

impl Transport {
    /// A plain socket, or one that starts a TLS handshake with `tls`.
    pub(crate) fn new(tcp: TcpStream, tls: Option<&TlsAcceptor>) -> Self {
        match tls {
            Some(acceptor) => Self::Handshake(Box::new(acceptor.accept(tcp))),
            None => Self::Plain(tcp),
        }
    }

    /// What the connection speaks: a plain one by its first bytes, peeked (left in the
    /// socket); a TLS one by the protocol its handshake agreed (ALPN). `None` when that does
    /// not tell: a plain connection that has sent part of the HTTP/2 preface and no more, or
    /// closed; a TLS one whose handshake failed or agreed no protocol.
    pub(crate) async fn protocol(&mut self) -> Option<Protocol> {
        if let Self::Plain(tcp) = self {
            let mut first = [0_u8; PREFACE.len()];
            let n = tcp.peek(&mut first).await.ok()?;
            let seen = first.get(..n)?;
            return if seen.is_empty() {
                None
            } else if !PREFACE.starts_with(seen) {
                Some(Protocol::Http1)
            } else if seen.len() == PREFACE.len() {
                Some(Protocol::Http2)
            } else {
                None
            };
        }
        std::future::poll_fn(|cx| self.poll_established(cx))
            .await
            .ok()?;
        let Self::Tls(stream) = self else {
            return None;
        };
        match stream.get_ref().1.alpn_protocol() {
            Some(b"h2") => Some(Protocol::Http2),
            Some(b"http/1.1") => Some(Protocol::Http1),
            _ => None,
        }
    }

    /// Drives the handshake; ready once bytes can flow.
    fn poll_established(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Self::Handshake(accept) => match ready!(Pin::new(&mut **accept).poll(cx)) {
                Ok(stream) => {
                    *self = Self::Tls(Box::new(stream));
                    Poll::Ready(Ok(()))
                }
                Err(e) => {
                    *self = Self::Failed;
                    Poll::Ready(Err(e))
                }
            },
            Self::Failed => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "TLS handshake failed",
            ))),
            Self::Plain(_) | Self::Tls(_) => Poll::Ready(Ok(())),
        }
    }
}

/// Forwards one I/O call to the established stream, after the handshake.
macro_rules! established {
    ($self:ident, $cx:ident, $s:ident => $call:expr) => {{
        let this = &mut *$self;
        ready!(this.poll_established($cx))?;
        match this {
            Transport::Plain($s) => {
                let $s = Pin::new($s);
                $call
            }
            Transport::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $call
            }
            Transport::Handshake(_) | Transport::Failed => {
                Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)))
            }
        }
    }};
}

impl AsyncRead for Transport {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        established!(self, cx, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        established!(self, cx, s => s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        established!(self, cx, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
            Self::Handshake(_) | Self::Failed => false,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        established!(self, cx, s => s.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        established!(self, cx, s => s.poll_shutdown(cx))
    }
}

/// The served certificate, replaced in place when the files change.
#[derive(Debug)]
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times and sizes when last read.
    stamp: Mutex<Stamp>,
}

type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let of = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    [of(cert), of(key)]
}

impl Reloading {
    fn reload_if_changed(&self) {
        let now = stamp(&self.cert, &self.key);
        {
            let Ok(mut last) = self.stamp.lock() else {
                return;
            };
            if *last == now {
                return;
            }
            *last = now;
        }
        match load_pair(&self.cert, &self.key) {
            Ok(pair) => {
                if let Ok(mut current) = self.current.write() {
                    *current = Arc::new(pair);
                }
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate changed but did not load; serving the previous one");
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

/// Reads a PEM chain and a PEM private key (PKCS#8, PKCS#1 or SEC1) and checks they match.
fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, Error> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| {
            Error::internal(format!(
                "server.tls_cert_file {}: {e}; give a PEM certificate chain",
                cert.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(Error::internal(format!(
            "server.tls_cert_file {}: no certificate in the file; give a PEM certificate chain",
            cert.display()
        )));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Error::internal(format!(
            "server.tls_key_file {}: {e}; give a PEM private key",
            key.display()
        ))
    })?;
    let signing = any_supported_type(&der)
        .map_err(|e| Error::internal(format!("server.tls_key_file {}: {e}", key.display())))?;
    let pair = CertifiedKey::new(chain, signing);
    pair.keys_match().map_err(|e| {
        Error::internal(format!(
            "server.tls_key_file {} does not match server.tls_cert_file {}: {e}",
            key.display(),
            cert.display()
        ))
    })?;
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for `localhost` from the system's `openssl`, written to `dir`.
    fn self_signed(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        let ok = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "extendedKeyUsage=serverAuth"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .map(|o| o.status.success());
        assert_eq!(
            ok.ok(),
            Some(true),
            "openssl could not make a test certificate"
        );
        (cert, key)
    }

    fn served_subject(certs: &Reloading) -> Vec<u8> {
        let current = certs.current.read().map(|c| c.clone());
        current.map(|c| c.cert[0].to_vec()).unwrap_or_default()
    }

    #[test]
    fn loads_a_pair_and_refuses_a_mismatch_naming_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_a, key_a) = self_signed(dir.path(), "a");
        let (_, key_b) = self_signed(dir.path(), "b");
        assert!(Tls::load(&cert_a, &key_a).is_ok());
        let cause = |r: Result<Tls, Error>| r.err().and_then(|e| e.cause).unwrap_or_default();
        let e = cause(Tls::load(&cert_a, &key_b));
        assert!(e.contains("does not match") && e.contains("b.key"), "{e}");
        let e = cause(Tls::load(&dir.path().join("none.crt"), &key_a));
        assert!(e.contains("tls_cert_file") && e.contains("none.crt"), "{e}");
    }

    #[test]
    fn a_changed_pair_is_served_and_a_broken_one_keeps_the_previous() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "live");
        let tls = Tls::load(&cert, &key).unwrap();
        let first = served_subject(&tls.certs);
        // A half-written renewal: the new certificate with the old key does not load.
        let (next_cert, next_key) = self_signed(dir.path(), "next");
        std::fs::copy(&next_cert, &cert).unwrap();
        tls.certs.reload_if_changed();
        assert_eq!(served_subject(&tls.certs), first);
        // The key follows: the pair now matches and is served.
        std::fs::copy(&next_key, &key).unwrap();
        tls.certs.reload_if_changed();
        let second = served_subject(&tls.certs);
        assert_ne!(second, first);
        assert_eq!(
            second,
            std::fs::read(&next_cert).map(|_| second.clone()).unwrap()
        );
    }
}
