//! MRAS bodies (`application/msrtc-media-relay-auth+xml`, namespace
//! `http://schemas.microsoft.com/2006/09/sip/mrasp`): the SERVICE request a
//! client sends for A/V Edge credentials and the 200 OK that returns them
//! with the media relay list (PROTOCOLS.md §6; SIPE
//! `sipe_media_get_av_edge_credentials`, officesip `Mras.XmlContent`).
//!
//! Read with quick-xml by local name, so any namespace prefix works.  The
//! password (the TURN long-term credential) is kept here; the output model
//! redacts it.  Nothing here panics; a body that is not well-formed XML
//! gives an error with quick-xml's reason.

use quick_xml::events::Event;
use quick_xml::Reader;

/// Largest number of relays kept from one response.
pub const MAX_RELAYS: usize = 64;

/// A decoded MRAS body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mras {
    /// `<request>`: a client asks for credentials.
    Request {
        /// `requestID` attribute.
        request_id: Option<String>,
        /// `<identity>` (the SIP URI asking).
        identity: Option<String>,
        /// `<location>` (internet / intranet).
        location: Option<String>,
        /// `<duration>` asked for (minutes; SIPE sends 480).
        duration: Option<String>,
    },
    /// `<response>`: credentials and relays.
    Response {
        /// `requestID` attribute.
        request_id: Option<String>,
        /// `reasonPhrase` attribute.
        reason: Option<String>,
        /// `<credentials>` when present.
        credentials: Option<Credentials>,
        /// `<mediaRelayList>` entries in order.
        relays: Vec<Relay>,
    },
}

/// `<credentials>` of a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `<username>`: the opaque token the client puts in TURN USERNAME.
    pub username: Option<String>,
    /// `<password>`: the TURN password (secret).
    pub password: Option<String>,
    /// `<duration>` granted.
    pub duration: Option<String>,
    /// `<realm>` when given.
    pub realm: Option<String>,
}

/// One `<mediaRelay>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Relay {
    /// `<location>`: internet or intranet.
    pub location: Option<String>,
    /// `<hostName>`.
    pub host_name: Option<String>,
    /// `<directIPAddress>`.
    pub direct_ip: Option<String>,
    /// `<udpPort>`.
    pub udp_port: Option<u16>,
    /// `<tcpPort>`.
    pub tcp_port: Option<u16>,
}

/// True when a Content-Type names an MRAS body.
pub fn is_mras(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| {
        c.trim_start()
            .to_ascii_lowercase()
            .starts_with("application/msrtc-media-relay-auth+xml")
    })
}

/// Parses an MRAS body.
pub fn parse(body: &[u8]) -> Result<Mras, String> {
    let mut r = Reader::from_reader(body);
    // bodies come from untrusted packets: no entity expansion beyond the five
    // predefined ones, and mismatched end tags are reported, not guessed
    r.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut root: Option<(String, Option<String>, Option<String>)> = None;
    let (mut identity, mut location, mut duration) = (None, None, None);
    let mut creds: Option<Credentials> = None;
    let mut relays: Vec<Relay> = Vec::new();
    loop {
        let ev = r
            .read_event()
            .map_err(|e| format!("MRAS XML at byte {}: {e}", r.error_position()))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_string();
                if root.is_none() {
                    let attr = |k: &[u8]| {
                        e.attributes().flatten().find_map(|a| {
                            (a.key.local_name().as_ref() == k)
                                .then(|| String::from_utf8_lossy(&a.value).to_string())
                        })
                    };
                    root = Some((name.clone(), attr(b"requestID"), attr(b"reasonPhrase")));
                }
                match name.as_str() {
                    "credentials" => creds = Some(Credentials::default()),
                    "mediaRelay" if relays.len() < MAX_RELAYS => relays.push(Relay::default()),
                    _ => {}
                }
                // an empty element (`<udpPort/>`) has no End event and no text
                if matches!(ev, Event::Start(_)) {
                    path.push(name);
                }
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.decode().unwrap_or_default()),
            Event::GeneralRef(g) => {
                let n = g.decode().unwrap_or_default();
                if let Ok(Some(c)) = g.resolve_char_ref() {
                    text.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&n) {
                    text.push_str(s);
                }
            }
            Event::CData(c) => text.push_str(&String::from_utf8_lossy(&c)),
            Event::End(_) => {
                let Some(name) = path.pop() else { break };
                let parent = path.last().map(String::as_str).unwrap_or("");
                let val = Some(text.trim().to_string()).filter(|s| !s.is_empty());
                text.clear();
                match (parent, name.as_str()) {
                    ("credentialsRequest", "identity") => identity = val,
                    ("credentialsRequest", "location") => location = val,
                    ("credentialsRequest", "duration") => duration = val,
                    ("credentials", field) => {
                        if let Some(c) = creds.as_mut() {
                            match field {
                                "username" => c.username = val,
                                "password" => c.password = val,
                                "duration" => c.duration = val,
                                "realm" => c.realm = val,
                                _ => {}
                            }
                        }
                    }
                    ("mediaRelay", field) if path.len() >= 2 => {
                        if let Some(rl) = relays.last_mut() {
                            match field {
                                "location" => rl.location = val,
                                "hostName" => rl.host_name = val,
                                "directIPAddress" => rl.direct_ip = val,
                                "udpPort" => rl.udp_port = val.and_then(|v| v.parse().ok()),
                                "tcpPort" => rl.tcp_port = val.and_then(|v| v.parse().ok()),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match root {
        Some((n, request_id, _)) if n == "request" => Ok(Mras::Request {
            request_id,
            identity,
            location,
            duration,
        }),
        Some((n, request_id, reason)) if n == "response" => Ok(Mras::Response {
            request_id,
            reason,
            credentials: creds,
            relays,
        }),
        Some((n, ..)) => Err(format!("MRAS body with root <{n}>, not request/response")),
        None => Err("MRAS body without an XML element".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESPONSE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<response xmlns="http://schemas.microsoft.com/2006/09/sip/mrasp" requestID="83475837" version="2.0" serverVersion="2.0" reasonPhrase="OK">
  <credentialsResponse credentialsRequestID="83475837">
    <credentials><username>AgAAJ&amp;x</username><password>secret=</password><duration>480</duration></credentials>
    <mediaRelayList>
      <mediaRelay><location>internet</location><hostName>av-edge.lab.example</hostName><udpPort>3478</udpPort><tcpPort>443</tcpPort></mediaRelay>
      <mediaRelay><location>intranet</location><directIPAddress>10.0.0.1</directIPAddress><udpPort/><tcpPort>3478</tcpPort></mediaRelay>
    </mediaRelayList>
  </credentialsResponse>
</response>"#;

    #[test]
    fn response_with_relays() {
        let Mras::Response {
            request_id,
            reason,
            credentials,
            relays,
        } = parse(RESPONSE.as_bytes()).unwrap()
        else {
            panic!("not a response")
        };
        assert_eq!(request_id.as_deref(), Some("83475837"));
        assert_eq!(reason.as_deref(), Some("OK"));
        let c = credentials.unwrap();
        assert_eq!(c.username.as_deref(), Some("AgAAJ&x"));
        assert_eq!(c.password.as_deref(), Some("secret="));
        assert_eq!(relays.len(), 2);
        assert_eq!(relays[0].host_name.as_deref(), Some("av-edge.lab.example"));
        assert_eq!(
            (relays[0].udp_port, relays[0].tcp_port),
            (Some(3478), Some(443))
        );
        assert_eq!(relays[1].direct_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!((relays[1].udp_port, relays[1].tcp_port), (None, Some(3478)));
    }

    #[test]
    fn request_with_prefix() {
        let b = br#"<m:request xmlns:m="http://schemas.microsoft.com/2006/09/sip/mrasp" requestID="7"><m:credentialsRequest><m:identity>sip:a@b</m:identity><m:location>intranet</m:location><m:duration>480</m:duration></m:credentialsRequest></m:request>"#;
        assert_eq!(
            parse(b).unwrap(),
            Mras::Request {
                request_id: Some("7".into()),
                identity: Some("sip:a@b".into()),
                location: Some("intranet".into()),
                duration: Some("480".into()),
            }
        );
    }

    #[test]
    fn damage_is_an_error() {
        assert!(parse(b"").is_err());
        assert!(parse(b"<other/>").is_err());
        assert!(parse(b"<response><credentials></response>").is_err());
        // every prefix of a good body: an error or a partial result, never a panic
        for n in 0..RESPONSE.len() {
            let _ = parse(&RESPONSE.as_bytes()[..n]);
        }
    }
}
