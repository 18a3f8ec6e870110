//! rustls client configurations for libpq's `sslmode` values, which tokio-postgres does not parse itself:
//! `prefer`/`require` encrypt without checking the certificate (as libpq does), `verify-ca` checks the chain,
//! `verify-full` checks the chain and the host name.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// How far the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    None,
    Chain,
    Full,
}

/// A client config for `verify`, trusting `root_pem` (PEM text) or, without it, the public web roots.
pub fn client_config(
    verify: Verify,
    root_pem: Option<&str>,
) -> Result<rustls::ClientConfig, String> {
    assay_secrets::install_crypto_provider();
    let mut roots = RootCertStore::empty();
    match root_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("sslrootcert is not valid PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("sslrootcert holds an unusable certificate: {e}"))?;
            }
            if roots.is_empty() {
                return Err("sslrootcert holds no certificate".to_string());
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let roots = Arc::new(roots);
    let builder = rustls::ClientConfig::builder();
    let config = match verify {
        Verify::Full => builder.with_root_certificates(roots).with_no_client_auth(),
        Verify::Chain | Verify::None => {
            let inner = WebPkiServerVerifier::builder(roots)
                .build()
                .map_err(|e| e.to_string())?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Relaxed {
                    inner,
                    check_chain: verify == Verify::Chain,
                }))
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// Accepts any certificate (`require`) or any certificate with a valid chain whatever its name (`verify-ca`);
/// handshake signatures are always checked.
#[derive(Debug)]
struct Relaxed {
    inner: Arc<WebPkiServerVerifier>,
    check_chain: bool,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if !self.check_chain {
            return Ok(ServerCertVerified::assertion());
        }
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(v) => Ok(v),
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(e),
        }
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
