//! X.509 certificates as TLS carries them (DER), read with x509-parser and
//! reduced to what decides an Edge handshake: subject, issuer, serial, SAN,
//! validity, key usage and extended key usage (PROTOCOLS.md §8.5).
//!
//! The EKU is judged by **TLS role**, not TCP role (RFC 5280 §4.2.1.12):
//! a certificate sent by the ClientHello side needs clientAuth (or
//! anyExtendedKeyUsage, or no EKU extension at all); one sent by the
//! ServerHello side needs serverAuth likewise.  On 8057 the Edge sends the
//! ClientHello, so its internal certificate is the *client* certificate.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

/// A certificate summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject DN in RFC 4514 order (`CN=…,O=…`).
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Serial as colon-separated hex (Wireshark's style).
    pub serial: String,
    /// SAN dNSName entries.
    pub san_dns: Vec<String>,
    /// SAN iPAddress entries.
    pub san_ip: Vec<String>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// EKU purposes (`serverAuth`, `clientAuth`, `anyExtendedKeyUsage`, other OIDs);
    /// None when the extension is absent.
    pub eku: Option<Vec<String>>,
    /// Key usage bits as x509-parser names them.
    pub key_usage: Option<String>,
    /// Self-signed (subject == issuer).
    pub self_signed: bool,
}

/// The TLS role a certificate is used in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsRole {
    /// Sent by the ClientHello side.
    Client,
    /// Sent by the ServerHello side.
    Server,
}

impl CertInfo {
    /// Whether the EKU allows the role: (ok, explanation).
    pub fn eku_allows(&self, role: TlsRole) -> (bool, String) {
        let need = match role {
            TlsRole::Client => "clientAuth",
            TlsRole::Server => "serverAuth",
        };
        match &self.eku {
            None => (
                true,
                format!("no EKU extension: any purpose, {need} allowed"),
            ),
            Some(list) if list.iter().any(|p| p == need) => (true, format!("EKU has {need}")),
            Some(list) if list.iter().any(|p| p == "anyExtendedKeyUsage") => (
                true,
                format!("EKU has anyExtendedKeyUsage ({need} allowed)"),
            ),
            Some(list) => (false, format!("EKU lacks {need} (has {})", list.join(", "))),
        }
    }
}

/// Parses a DER certificate.
pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
    let (_, c) = X509Certificate::from_der(der).map_err(|e| format!("certificate: {e}"))?;
    let mut san_dns = Vec::new();
    let mut san_ip = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => san_dns.push(d.to_string()),
                GeneralName::IPAddress(b) => san_ip.push(match b.len() {
                    4 => std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
                    16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(b);
                        std::net::Ipv6Addr::from(a).to_string()
                    }
                    _ => format!("{b:02x?}"),
                }),
                _ => {}
            }
        }
    }
    let eku = match c.extended_key_usage() {
        Ok(Some(e)) => {
            let e = e.value;
            let mut v = Vec::new();
            for (on, name) in [
                (e.server_auth, "serverAuth"),
                (e.client_auth, "clientAuth"),
                (e.code_signing, "codeSigning"),
                (e.email_protection, "emailProtection"),
                (e.time_stamping, "timeStamping"),
                (e.ocsp_signing, "OCSPSigning"),
                (e.any, "anyExtendedKeyUsage"),
            ] {
                if on {
                    v.push(name.to_string());
                }
            }
            v.extend(e.other.iter().map(|o| o.to_id_string()));
            Some(v)
        }
        _ => None,
    };
    let subject = rfc4514(c.subject());
    let issuer = rfc4514(c.issuer());
    Ok(CertInfo {
        self_signed: subject == issuer,
        subject,
        issuer,
        serial: c.raw_serial_as_string(),
        san_dns,
        san_ip,
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
        eku,
        key_usage: c.key_usage().ok().flatten().map(|k| k.value.to_string()),
    })
}

/// A DN as RFC 4514 writes it: RDNs in reverse DER order, comma-separated
/// (`CN=edge.example,O=Contoso`), which is also how OpenSSL and most
/// tooling print it.
fn rfc4514(name: &X509Name<'_>) -> String {
    name.iter_rdn()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|rdn| X509Name::new(vec![rdn.clone()], name.as_raw()).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(eku: Option<&[&str]>) -> CertInfo {
        CertInfo {
            subject: "CN=a".into(),
            issuer: "CN=b".into(),
            serial: "01".into(),
            san_dns: vec![],
            san_ip: vec![],
            not_before: 0,
            not_after: 0,
            eku: eku.map(|l| l.iter().map(|s| s.to_string()).collect()),
            key_usage: None,
            self_signed: false,
        }
    }

    #[test]
    fn eku_by_tls_role() {
        assert!(!info(Some(&["serverAuth"])).eku_allows(TlsRole::Client).0);
        assert!(info(Some(&["serverAuth"])).eku_allows(TlsRole::Server).0);
        assert!(
            info(Some(&["serverAuth", "clientAuth"]))
                .eku_allows(TlsRole::Client)
                .0
        );
        assert!(
            info(Some(&["anyExtendedKeyUsage"]))
                .eku_allows(TlsRole::Client)
                .0
        );
        assert!(info(None).eku_allows(TlsRole::Client).0);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse(b"").is_err());
        assert!(parse(&[0x30, 0x82, 0xff, 0xff, 0]).is_err());
    }
}
