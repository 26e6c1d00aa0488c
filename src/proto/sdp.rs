//! SDP bodies [RFC 8866] as Lync/SfB/Teams and standard ICE agents write
//! them, reduced to what an Edge engineer and the ICE analyzer need: media
//! lines, connection addresses, ICE credentials and every candidate
//! (PROTOCOLS.md §5).
//!
//! Candidate grammars accepted on `a=candidate:` and any `a=x-candidate*:`
//! attribute (MS-SDPEXT §3.1.5.21.1 `x-candidate-ipv6`):
//! - RFC 5245/8839 §5.1 `foundation component transport priority address
//!   port typ TYPE [raddr A rport P] *(ext value)`, with RFC 6544
//!   `tcptype active|passive|so` on TCP;
//! - MS-ICE2 transports `TCP-ACT` / `TCP-PASS` (any case), which are TCP
//!   with an implied tcptype (an active MS candidate also listens, SIPE);
//! - MS-ICE v1 / draft-ietf-mmusic-ice-06 `username component password
//!   UDP|TCP 0.qvalue address port`, told apart by the absence of `typ` as
//!   the 7th token (SIPE `parse_append_candidate_draft_6`).
//!
//! A multipart/alternative body (OCS 2007 R2 – Lync 2013 INVITEs) is split
//! into its `application/sdp` parts; the part whose Content-Disposition
//! carries `ms-proxy-2007fallback` is marked as the draft-6 fallback.
//!
//! Secrets (`a=ice-pwd`, the draft-6 candidate password, `a=crypto` /
//! `a=cryptoscale` key material) are kept here; the output model redacts
//! them.  Nothing here panics on any input.

/// How many candidates one media section keeps (a real offer has < 40).
pub const MAX_CANDIDATES: usize = 256;
/// How many media sections one body keeps.
pub const MAX_MEDIA: usize = 64;

/// A parsed SDP body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sdp {
    /// `o=` value.
    pub origin: Option<String>,
    /// Session-level `c=` value (`IN IP4 10.0.0.1`).
    pub connection: Option<String>,
    /// Session-level `a=ice-ufrag`.
    pub ice_ufrag: Option<String>,
    /// Session-level `a=ice-pwd` (secret).
    pub ice_pwd: Option<String>,
    /// Session-level `a=ice-lite`.
    pub ice_lite: bool,
    /// Media sections in order.
    pub media: Vec<Media>,
    /// Lines that could not be read, with the reason.
    pub problems: Vec<String>,
}

/// One `m=` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `applicationsharing`, `data`, `message`…
    pub kind: String,
    /// Port of the m-line (the default candidate's port).
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, `TCP/RTP/AVP`, `UDP/TLS/RTP/SAVPF`…
    pub profile: String,
    /// Format list (payload types).
    pub formats: Vec<String>,
    /// Media-level `c=`, or the session's.
    pub connection: Option<String>,
    /// `a=ice-ufrag` (media level, else session level).
    pub ice_ufrag: Option<String>,
    /// `a=ice-pwd` (media level, else session level; secret).
    pub ice_pwd: Option<String>,
    /// Every candidate in order.
    pub candidates: Vec<Candidate>,
    /// `a=remote-candidates` / `a=remote-candidate` values.
    pub remote_candidates: Vec<String>,
    /// `a=rtcp-mux` present.
    pub rtcp_mux: bool,
    /// `a=rtcp:` value.
    pub rtcp: Option<String>,
    /// `a=label:` value (`main-audio`, `applicationsharing-video`…).
    pub label: Option<String>,
    /// `a=crypto` / `a=cryptoscale` lines (key material is secret).
    pub crypto: Vec<String>,
    /// `a=sendrecv|sendonly|recvonly|inactive`, or the MS
    /// `x-applicationsharing-contentflow` value.
    pub direction: Option<String>,
}

/// Which grammar a candidate line used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CandidateForm {
    /// RFC 5245 / RFC 8839 (incl. RFC 6544 and MS-ICE2 TCP-ACT/TCP-PASS).
    Rfc5245,
    /// draft-ietf-mmusic-ice-06 (MS-ICE v1, the 2007 fallback).
    Draft6,
}

/// One ICE candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The attribute it came from: `candidate`, `x-candidate-ipv6`…
    pub attr: String,
    /// Grammar.
    pub form: CandidateForm,
    /// Foundation (RFC form) or the base64 username (draft 6).
    pub foundation: String,
    /// Component (1 RTP, 2 RTCP).
    pub component: u16,
    /// Transport token as written (`UDP`, `TCP-ACT`, `tcp`…).
    pub transport: String,
    /// `udp` or `tcp`.
    pub protocol: &'static str,
    /// `active`, `passive` or `so` for TCP (RFC 6544 `tcptype`, or implied by
    /// TCP-ACT / TCP-PASS); MS TCP-ACT and draft-6 TCP also accept.
    pub tcp_type: Option<String>,
    /// Priority (RFC form); draft-6 qvalues are scaled to 0..=1000.
    pub priority: u32,
    /// Address as written (IPv4, IPv6 or an FQDN / mDNS name).
    pub address: String,
    /// Port.
    pub port: u16,
    /// `host`, `srflx`, `prflx`, `relay` (None in draft 6).
    pub typ: Option<String>,
    /// `raddr`.
    pub raddr: Option<String>,
    /// `rport`.
    pub rport: Option<u16>,
    /// Draft-6 per-candidate password (secret).
    pub password: Option<String>,
    /// Other extension pairs in order (`generation 0`, `network-id 1`…).
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    /// Parses the value after `a=candidate:`; `attr` names the attribute.
    pub fn parse(attr: &str, v: &str) -> Result<Candidate, String> {
        let t: Vec<&str> = v.split_ascii_whitespace().collect();
        if t.len() < 6 {
            return Err(format!("{attr}: {} tokens, need at least 6", t.len()));
        }
        let component = t[1]
            .parse::<u16>()
            .map_err(|_| format!("{attr}: component {:?} is not a number", t[1]))?;
        if t.get(6).is_some_and(|x| x.eq_ignore_ascii_case("typ")) || t.len() == 6 {
            Self::rfc(attr, &t, component)
        } else {
            Self::draft6(attr, &t, component)
        }
    }

    fn rfc(attr: &str, t: &[&str], component: u16) -> Result<Candidate, String> {
        let transport = t[2].to_string();
        let (protocol, mut tcp_type) = match transport.to_ascii_uppercase().as_str() {
            "UDP" => ("udp", None),
            "TCP" => ("tcp", None),
            "TCP-ACT" => ("tcp", Some("active".to_string())),
            "TCP-PASS" => ("tcp", Some("passive".to_string())),
            "TCP-SO" => ("tcp", Some("so".to_string())),
            _ => return Err(format!("{attr}: unknown transport {transport:?}")),
        };
        let priority = t[3]
            .parse::<u32>()
            .map_err(|_| format!("{attr}: priority {:?} is not a number", t[3]))?;
        let port = t[5]
            .parse::<u16>()
            .map_err(|_| format!("{attr}: port {:?} is not a number", t[5]))?;
        let mut c = Candidate {
            attr: attr.to_string(),
            form: CandidateForm::Rfc5245,
            foundation: t[0].to_string(),
            component,
            transport,
            protocol,
            tcp_type: None,
            priority,
            address: t[4].to_string(),
            port,
            typ: None,
            raddr: None,
            rport: None,
            password: None,
            extensions: Vec::new(),
        };
        let mut i = 6;
        while i + 1 < t.len() {
            let (k, val) = (t[i], t[i + 1]);
            match k.to_ascii_lowercase().as_str() {
                "typ" => c.typ = Some(val.to_ascii_lowercase()),
                "raddr" => c.raddr = Some(val.to_string()),
                "rport" => c.rport = val.parse().ok(),
                "tcptype" => tcp_type = Some(val.to_ascii_lowercase()),
                _ => c.extensions.push((k.to_string(), val.to_string())),
            }
            i += 2;
        }
        if i < t.len() {
            c.extensions.push((t[i].to_string(), String::new()));
        }
        c.tcp_type = if protocol == "tcp" { tcp_type } else { None };
        Ok(c)
    }

    fn draft6(attr: &str, t: &[&str], component: u16) -> Result<Candidate, String> {
        if t.len() < 7 {
            return Err(format!("{attr}: draft-6 form needs 7 tokens"));
        }
        let protocol = match t[3].to_ascii_uppercase().as_str() {
            "UDP" => "udp",
            "TCP" => "tcp",
            _ => return Err(format!("{attr}: unknown transport {:?}", t[3])),
        };
        let port = t[6]
            .parse::<u16>()
            .map_err(|_| format!("{attr}: port {:?} is not a number", t[6]))?;
        Ok(Candidate {
            attr: attr.to_string(),
            form: CandidateForm::Draft6,
            foundation: t[0].to_string(),
            component,
            transport: t[3].to_string(),
            protocol,
            // draft 6: TCP means both active and passive (SIPE)
            tcp_type: (protocol == "tcp").then(|| "active+passive".to_string()),
            priority: qvalue(t[4]),
            address: t[5].to_string(),
            port,
            typ: None,
            raddr: None,
            rport: None,
            password: Some(t[2].to_string()),
            extensions: Vec::new(),
        })
    }

    /// `address:port` as text (`[v6]:port` for IPv6; names as written).
    pub fn address_port(&self) -> String {
        host_port(&self.address, self.port)
    }

    /// `address:port` as a socket address when the address is an IP literal.
    pub fn socket(&self) -> Option<std::net::SocketAddr> {
        let ip: std::net::IpAddr = self.address.parse().ok()?;
        Some(std::net::SocketAddr::new(ip, self.port))
    }
}

/// `addr:port`, with brackets around an IPv6 address.
pub fn host_port(addr: &str, port: u16) -> String {
    if addr.contains(':') {
        format!("[{addr}]:{port}")
    } else {
        format!("{addr}:{port}")
    }
}

/// `0.830` → 830 (qvalues have at most three decimals, RFC 3261 §25.1).
fn qvalue(s: &str) -> u32 {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut v = int.parse::<u32>().unwrap_or(0).min(1) * 1000;
    let mut scale = 100;
    for d in frac.bytes().take(3) {
        if d.is_ascii_digit() {
            v += u32::from(d - b'0') * scale;
        }
        scale /= 10;
    }
    v.min(1000)
}

/// Parses one SDP body.  Bare LF line ends and invalid UTF-8 are tolerated.
pub fn parse(body: &[u8]) -> Sdp {
    let text = super::text(body);
    let mut sdp = Sdp::default();
    let mut cur: Option<Media> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let Some((k, v)) = line.split_once('=') else {
            if !line.trim().is_empty() {
                sdp.problems.push(format!("line {}: not type=value", n + 1));
            }
            continue;
        };
        match (k, cur.as_mut()) {
            ("m", _) => {
                if let Some(m) = cur.take() {
                    push_media(&mut sdp, m);
                }
                let t: Vec<&str> = v.split_ascii_whitespace().collect();
                let port = t
                    .get(1)
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.parse().ok());
                if port.is_none() {
                    sdp.problems.push(format!("line {}: bad m= line", n + 1));
                }
                cur = Some(Media {
                    kind: t.first().unwrap_or(&"").to_string(),
                    port: port.unwrap_or(0),
                    profile: t.get(2).unwrap_or(&"").to_string(),
                    formats: t.iter().skip(3).map(|s| s.to_string()).collect(),
                    connection: sdp.connection.clone(),
                    ice_ufrag: sdp.ice_ufrag.clone(),
                    ice_pwd: sdp.ice_pwd.clone(),
                    ..Media::default()
                });
            }
            ("o", None) => sdp.origin = Some(v.to_string()),
            ("c", None) => sdp.connection = Some(v.to_string()),
            ("c", Some(m)) => m.connection = Some(v.to_string()),
            ("a", m) => {
                let (name, val) = v.split_once(':').unwrap_or((v, ""));
                attribute(
                    &mut sdp.problems,
                    m,
                    &mut sdp.ice_ufrag,
                    &mut sdp.ice_pwd,
                    &mut sdp.ice_lite,
                    name,
                    val,
                );
            }
            _ => {}
        }
    }
    if let Some(m) = cur.take() {
        push_media(&mut sdp, m);
    }
    sdp
}

fn push_media(sdp: &mut Sdp, m: Media) {
    if sdp.media.len() < MAX_MEDIA {
        sdp.media.push(m);
    } else if sdp.media.len() == MAX_MEDIA {
        sdp.problems
            .push(format!("more than {MAX_MEDIA} m= lines; the rest dropped"));
    }
}

fn attribute(
    problems: &mut Vec<String>,
    m: Option<&mut Media>,
    ufrag: &mut Option<String>,
    pwd: &mut Option<String>,
    lite: &mut bool,
    name: &str,
    val: &str,
) {
    let lname = name.to_ascii_lowercase();
    let Some(m) = m else {
        match lname.as_str() {
            "ice-ufrag" => *ufrag = Some(val.trim().to_string()),
            "ice-pwd" => *pwd = Some(val.trim().to_string()),
            "ice-lite" => *lite = true,
            _ => {}
        }
        return;
    };
    match lname.as_str() {
        "ice-ufrag" => m.ice_ufrag = Some(val.trim().to_string()),
        "ice-pwd" => m.ice_pwd = Some(val.trim().to_string()),
        "rtcp-mux" => m.rtcp_mux = true,
        "rtcp" => m.rtcp = Some(val.trim().to_string()),
        "label" => m.label = Some(val.trim().to_string()),
        "crypto" | "cryptoscale" => m.crypto.push(val.trim().to_string()),
        "sendrecv" | "sendonly" | "recvonly" | "inactive" => m.direction = Some(lname.clone()),
        "x-applicationsharing-contentflow" => m.direction = Some(val.trim().to_string()),
        "remote-candidates" | "remote-candidate" => {
            m.remote_candidates.push(val.trim().to_string())
        }
        n if n == "candidate" || (n.starts_with("x-candidate") && n != "x-candidate-info") => {
            if m.candidates.len() >= MAX_CANDIDATES {
                return;
            }
            match Candidate::parse(name, val) {
                Ok(c) => m.candidates.push(c),
                Err(e) => problems.push(e),
            }
        }
        _ => {}
    }
}

/// Whether a SIP message's SDP is an offer or an answer (RFC 3264 over
/// RFC 3261 §13.2.1): a request other than ACK offers; a response, or an
/// ACK answering an offer made in a 2xx, answers.  `request_method` is None
/// for responses.
pub fn offer_or_answer(request_method: Option<&str>) -> &'static str {
    match request_method {
        Some(m) if !m.eq_ignore_ascii_case("ACK") => "offer",
        _ => "answer",
    }
}

/// One SDP part of a SIP body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpPart {
    /// True for the `ms-proxy-2007fallback` part of a multipart/alternative body.
    pub fallback_2007: bool,
    /// The parsed body.
    pub sdp: Sdp,
}

/// The SDP bodies of a SIP message body with the given Content-Type: one
/// for `application/sdp`, one per SDP part for `multipart/*`, none else.
pub fn from_body(content_type: Option<&str>, body: &[u8]) -> Vec<SdpPart> {
    let Some(ct) = content_type else {
        return Vec::new();
    };
    let lct = ct.to_ascii_lowercase();
    if lct.trim_start().starts_with("application/sdp") {
        return vec![SdpPart {
            fallback_2007: false,
            sdp: parse(body),
        }];
    }
    if !lct.trim_start().starts_with("multipart/") {
        return Vec::new();
    }
    let Some(boundary) = boundary(ct) else {
        return Vec::new();
    };
    multipart_parts(body, &boundary)
        .into_iter()
        .filter_map(|(headers, part)| {
            let h = headers.to_ascii_lowercase();
            let ctype = header_value(&h, "content-type");
            if !ctype.is_some_and(|c| c.starts_with("application/sdp")) {
                return None;
            }
            Some(SdpPart {
                fallback_2007: header_value(&h, "content-disposition")
                    .is_some_and(|d| d.contains("ms-proxy-2007fallback")),
                sdp: parse(part),
            })
        })
        .take(MAX_MEDIA)
        .collect()
}

/// `boundary=` of a multipart Content-Type (quoted or not).
fn boundary(ct: &str) -> Option<String> {
    let i = ct.to_ascii_lowercase().find("boundary=")?;
    let rest = &ct[i + "boundary=".len()..];
    let b = if let Some(q) = rest.strip_prefix('"') {
        q.split('"').next()?
    } else {
        rest.split([';', ' ', '\t']).next()?
    };
    (!b.is_empty()).then(|| b.to_string())
}

fn header_value<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq(name).then(|| v.trim())
    })
}

/// Splits a multipart body [RFC 2046 §5.1.1] into (part headers, part body).
fn multipart_parts<'a>(body: &'a [u8], boundary: &str) -> Vec<(String, &'a [u8])> {
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    let mut starts = Vec::new();
    let mut i = 0;
    while i + d.len() <= body.len() {
        if &body[i..i + d.len()] == d && (i == 0 || body[i - 1] == b'\n') {
            starts.push(i);
            i += d.len();
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    for w in starts.windows(2) {
        let mut s = w[0] + d.len();
        // the closing delimiter is `--boundary--`
        if body[s..].starts_with(b"--") {
            break;
        }
        while s < w[1] && matches!(body[s], b'\r' | b'\n' | b' ' | b'\t') {
            if body[s] == b'\n' {
                s += 1;
                break;
            }
            s += 1;
        }
        let part = &body[s..w[1]];
        let (hdr_end, body_start) = match find(part, b"\r\n\r\n") {
            Some(p) => (p, p + 4),
            None => match find(part, b"\n\n") {
                Some(p) => (p, p + 2),
                None => (0, 0),
            },
        };
        let headers = String::from_utf8_lossy(&part[..hdr_end]).to_string();
        out.push((headers, &part[body_start..]));
    }
    out
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines from PROTOCOLS.md §5.2 (SFBSAMPLE test vectors).
    #[test]
    fn ms_ice2_candidates() {
        let c = Candidate::parse(
            "candidate",
            "2 1 TCP-PASS 174456319 194.176.96.67 56148 typ relay raddr 10.77.44.43 rport 50024",
        )
        .unwrap();
        assert_eq!(c.protocol, "tcp");
        assert_eq!(c.tcp_type.as_deref(), Some("passive"));
        assert_eq!(c.priority, 174456319);
        assert_eq!(c.typ.as_deref(), Some("relay"));
        assert_eq!(c.raddr.as_deref(), Some("10.77.44.43"));
        assert_eq!(c.rport, Some(50024));
        let c = Candidate::parse(
            "x-candidate-ipv6",
            "6 1 UDP 2130703871 fd00:7:495:1::4c 14530 typ host",
        )
        .unwrap();
        assert_eq!(c.socket().unwrap().to_string(), "[fd00:7:495:1::4c]:14530");
        let c = Candidate::parse(
            "candidate",
            "5 1 TCP-ACT 1684797439 10.77.44.43 50024 typ srflx raddr 10.77.44.43 rport 50024",
        )
        .unwrap();
        assert_eq!(c.tcp_type.as_deref(), Some("active"));
    }

    #[test]
    fn rfc6544_and_extensions() {
        let c = Candidate::parse(
            "candidate",
            "1467250027 1 tcp 1518280447 192.168.1.2 9 typ host tcptype active generation 0 network-id 1",
        )
        .unwrap();
        assert_eq!((c.protocol, c.tcp_type.as_deref()), ("tcp", Some("active")));
        assert_eq!(c.port, 9);
        assert_eq!(
            c.extensions,
            [
                ("generation".into(), "0".into()),
                ("network-id".into(), "1".into())
            ]
        );
    }

    /// SIPE `parse_append_candidate_draft_6` example shape (trailing space kept).
    #[test]
    fn draft6_candidate() {
        let c = Candidate::parse(
            "candidate",
            "2Tr+uGbGB3KAmwUU7Bm5hQx3bfNk8KN2wJ9X0Y9jZq8 1 kCq9Pz7eLE0oPqMCX3i9Ig UDP 0.830 10.0.0.5 50040 ",
        )
        .unwrap();
        assert_eq!(c.form, CandidateForm::Draft6);
        assert_eq!(c.priority, 830);
        assert_eq!(c.password.as_deref(), Some("kCq9Pz7eLE0oPqMCX3i9Ig"));
        assert_eq!(c.port, 50040);
        assert!(c.typ.is_none());
    }

    #[test]
    fn bad_candidates_are_errors_not_panics() {
        for v in [
            "",
            "1",
            "1 x UDP 1 1.2.3.4 5 typ host",
            "1 1 SCTP 1 a 5 typ host",
            "1 1 UDP 1 a 99999 typ host",
            "1 1 UDP -1 a 5",
        ] {
            assert!(Candidate::parse("candidate", v).is_err(), "{v}");
        }
    }

    #[test]
    fn media_levels_and_session_inheritance() {
        let s = parse(b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\nc=IN IP4 10.0.0.1\r\na=ice-ufrag:sess\r\na=ice-pwd:sessionpassword0123456\r\nm=audio 5000 RTP/SAVP 0 8\r\na=candidate:1 1 UDP 2130706431 10.0.0.1 5000 typ host\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:abc|2^31\r\na=rtcp-mux\r\nm=video 5002 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\na=ice-ufrag:vid1\r\nm=applicationsharing 5004 TCP/RTP/AVP 127\r\na=x-applicationsharing-contentflow:sendonly\r\n");
        assert_eq!(s.media.len(), 3);
        let a = &s.media[0];
        assert_eq!(
            (a.kind.as_str(), a.port, a.profile.as_str()),
            ("audio", 5000, "RTP/SAVP")
        );
        assert_eq!(a.ice_ufrag.as_deref(), Some("sess"));
        assert!(a.rtcp_mux);
        assert_eq!(a.crypto.len(), 1);
        assert_eq!(s.media[1].ice_ufrag.as_deref(), Some("vid1"));
        assert_eq!(s.media[1].connection.as_deref(), Some("IN IP4 10.0.0.9"));
        assert_eq!(s.media[2].direction.as_deref(), Some("sendonly"));
        assert!(s.problems.is_empty());
    }

    #[test]
    fn multipart_alternative_with_2007_fallback() {
        let body = b"--bnd\r\nContent-Type: application/sdp\r\nContent-Transfer-Encoding: 7bit\r\nContent-Disposition: session; handling=optional; ms-proxy-2007fallback\r\n\r\nv=0\r\nm=audio 50040 RTP/AVP 0\r\na=candidate:dXNlcm5hbWVvZmNhbmRpZGF0ZQ 1 cGFzc3dvcmQ UDP 0.830 10.0.0.5 50040 \r\n\r\n--bnd\r\nContent-Type: application/sdp\r\nContent-Disposition: session; handling=optional\r\n\r\nv=0\r\nm=audio 50040 RTP/AVP 0\r\na=ice-ufrag:abcd\r\na=candidate:1 1 UDP 2130706431 10.0.0.5 50040 typ host \r\n\r\n--bnd--\r\n";
        let parts = from_body(Some("multipart/alternative;boundary=bnd"), body);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].fallback_2007 && !parts[1].fallback_2007);
        assert_eq!(
            parts[0].sdp.media[0].candidates[0].form,
            CandidateForm::Draft6
        );
        assert_eq!(
            parts[1].sdp.media[0].candidates[0].form,
            CandidateForm::Rfc5245
        );
        assert_eq!(parts[1].sdp.media[0].ice_ufrag.as_deref(), Some("abcd"));
        // quoted boundary, other content types ignored
        assert_eq!(
            from_body(Some("multipart/mixed; boundary=\"bnd\""), body).len(),
            2
        );
        assert!(from_body(Some("text/plain"), body).is_empty());
        assert!(from_body(None, body).is_empty());
    }

    #[test]
    fn qvalues() {
        assert_eq!(qvalue("0.830"), 830);
        assert_eq!(qvalue("1"), 1000);
        assert_eq!(qvalue("0.5"), 500);
        assert_eq!(qvalue("junk"), 0);
    }
}
