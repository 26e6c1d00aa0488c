//! SIP messages [RFC 3261]: start line, headers and body boundaries, parsed
//! the way a tolerant stack reads them (PROTOCOLS.md §7):
//!
//! - header names are case-insensitive and compact forms are expanded
//!   (§7.3.3 plus the extension letters);
//! - folded lines (continuations starting with SP/HTAB) are joined;
//! - comma lists (Via, Route, Record-Route, Contact…) are split only outside
//!   `<…>` and quoted strings, and values of repeated lines are kept in order;
//! - invalid UTF-8 is tolerated (lossy), bare LF line ends are accepted;
//! - on streams, a message ends `Content-Length` bytes after the blank line;
//!   padded values (SIPp writes `Content-Length:  123`) are trimmed, a missing
//!   one means 0 on a stream and "the rest" in a datagram, and a length beyond
//!   [`MAX_BODY`] is reported instead of being waited for.
//!
//! Nothing here panics on any bytes.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Largest body accepted on a stream (a claimed 2 GB Content-Length is damage).
pub const MAX_BODY: usize = 1 << 20;
/// Largest header block looked at before giving up on a message.
pub const MAX_HEADERS: usize = 64 * 1024;

/// Request line or status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`.
    Request {
        /// Method (INVITE, SERVICE, …).
        method: String,
        /// Request-URI.
        uri: String,
    },
    /// `SIP/2.0 code reason`.
    Response {
        /// Status code.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// A parsed SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// First line.
    pub start: StartLine,
    /// Header values, unfolded, one after another: one allocation for all of
    /// them, since every message found is kept until the end of the run.
    text: String,
    /// Headers in wire order: canonical name and the range of its value in `text`.
    headers: Vec<(Cow<'static, str>, u32, u32)>,
    /// The body bytes present (emptied by [`Message::drop_unread_body`] for
    /// bodies no analyzer reads; [`Message::body_length`] keeps their size).
    /// Shared: proxies relay the same body, and a finder keeps one copy.
    pub body: Arc<[u8]>,
    /// Size of the body present.
    body_len: usize,
    /// Content-Length as declared (None if absent or unreadable).
    pub content_length: Option<usize>,
    /// Problems noticed (message kept).
    pub problems: Vec<String>,
}

/// Header names in lower case, sorted (so each appears once), and
/// their canonical form: RFC 3261 §7.3.3 compact forms and the names
/// analyzers read.
const NAMES: &[(&str, &str)] = &[
    ("a", "Accept-Contact"),
    ("accept-contact", "Accept-Contact"),
    ("allow-events", "Allow-Events"),
    ("b", "Referred-By"),
    ("c", "Content-Type"),
    ("call-id", "Call-ID"),
    ("contact", "Contact"),
    ("content-encoding", "Content-Encoding"),
    ("content-length", "Content-Length"),
    ("content-type", "Content-Type"),
    ("cseq", "CSeq"),
    ("d", "Request-Disposition"),
    ("e", "Content-Encoding"),
    ("event", "Event"),
    ("f", "From"),
    ("from", "From"),
    ("i", "Call-ID"),
    ("identity", "Identity"),
    ("j", "Reject-Contact"),
    ("k", "Supported"),
    ("l", "Content-Length"),
    ("m", "Contact"),
    ("ms-client-diagnostics", "ms-client-diagnostics"),
    ("ms-diagnostics", "ms-diagnostics"),
    ("ms-diagnostics-public", "ms-diagnostics-public"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("record-route", "Record-Route"),
    ("refer-to", "Refer-To"),
    ("referred-by", "Referred-By"),
    ("reject-contact", "Reject-Contact"),
    ("request-disposition", "Request-Disposition"),
    ("route", "Route"),
    ("s", "Subject"),
    ("server", "Server"),
    ("session-expires", "Session-Expires"),
    ("subject", "Subject"),
    ("supported", "Supported"),
    ("t", "To"),
    ("to", "To"),
    ("u", "Allow-Events"),
    ("user-agent", "User-Agent"),
    ("v", "Via"),
    ("via", "Via"),
    ("x", "Session-Expires"),
    ("y", "Identity"),
];

/// The entries of [`NAMES`] whose lower-case name is `len` bytes long.
fn names_of_len(len: usize) -> &'static [(&'static str, &'static str)] {
    static BY_LEN: std::sync::OnceLock<Vec<Vec<(&'static str, &'static str)>>> =
        std::sync::OnceLock::new();
    let by_len = BY_LEN.get_or_init(|| {
        let longest = NAMES.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
        let mut v = vec![Vec::new(); longest + 1];
        for &(alias, full) in NAMES {
            v[alias.len()].push((alias, full));
        }
        v
    });
    by_len.get(len).map_or(&[], Vec::as_slice)
}

/// Expands compact header names and gives the usual capitalisation
/// (borrowed for the names we know, so most headers cost no allocation).
pub fn canonical_name(name: &str) -> Cow<'static, str> {
    let n = name.trim();
    let mut lower = [0u8; 24];
    if let Some(buf) = lower.get_mut(..n.len()) {
        for (d, c) in buf.iter_mut().zip(n.bytes()) {
            *d = c.to_ascii_lowercase();
        }
        // an equality test of the few names of the same length: a binary
        // search ordered ~6 byte strings per header through memcmp, a scan
        // of all names took 309 instructions a header
        if let Some((_, full)) = names_of_len(buf.len())
            .iter()
            .find(|(alias, _)| alias.as_bytes() == buf)
        {
            return Cow::Borrowed(full);
        }
    }
    Cow::Owned(n.to_string())
}

/// Splits a header value on commas outside `<…>` and double quotes.
pub fn split_commas(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    comma_parts(v, |p| out.push(p.to_string()));
    out
}

/// [`split_commas`] without allocating: each non-empty trimmed part in turn.
fn comma_parts<'a>(v: &'a str, mut part: impl FnMut(&'a str)) {
    let mut depth = 0i32;
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in v.char_indices() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => depth += 1,
            '>' => depth = (depth - 1).max(0),
            ',' if depth == 0 => {
                let t = v[start..i].trim();
                if !t.is_empty() {
                    part(t);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let t = v[start..].trim();
    if !t.is_empty() {
        part(t);
    }
}

/// Headers whose values are comma lists.
fn is_list(name: &str) -> bool {
    matches!(
        name,
        "Via"
            | "Route"
            | "Record-Route"
            | "Contact"
            | "Allow"
            | "Supported"
            | "Require"
            | "Proxy-Require"
            | "Unsupported"
            | "Allow-Events"
            | "Accept"
            | "Accept-Encoding"
            | "Accept-Language"
    )
}

impl Message {
    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// Method of a request, or the method of the CSeq for a response.
    pub fn method(&self) -> Option<String> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method.clone()),
            StartLine::Response { .. } => self.cseq().map(|(_, m)| m),
        }
    }

    /// Headers in wire order: (canonical name, unfolded value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(|(n, a, b)| (n.as_ref(), &self.text[*a as usize..*b as usize]))
    }

    /// Size of the body present in the capture.
    pub fn body_length(&self) -> usize {
        self.body_len
    }

    /// Frees the body unless an analyzer reads it (SDP, multipart bodies that
    /// may hold SDP, MRAS XML).  Messages are kept until the end of the run, and
    /// real Edge captures carry many presence and roaming NOTIFY/BENOTIFY
    /// bodies of several KB each that nothing reads.
    pub fn drop_unread_body(&mut self) {
        let ctype = self.header("Content-Type");
        let read = crate::proto::mras::is_mras(ctype)
            || ctype.is_some_and(|c| {
                let c = c.trim_start().to_ascii_lowercase();
                c.starts_with("application/sdp") || c.starts_with("multipart/")
            });
        if !read {
            self.body = Arc::from(&[][..]);
        }
    }

    /// First value of a header (canonical name).
    pub fn header(&self, name: &str) -> Option<&str> {
        // names compared before any value is sliced out of the text
        self.headers
            .iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, a, b)| &self.text[a as usize..b as usize])
    }

    /// All values of a header in order, comma lists split (list headers only).
    pub fn values(&self, name: &str) -> Vec<String> {
        let list = is_list(name);
        let mut out = Vec::new();
        for (n, v) in self.headers() {
            if n.eq_ignore_ascii_case(name) {
                if list {
                    comma_parts(v, |p| out.push(p.to_string()));
                } else {
                    out.push(v.to_string());
                }
            }
        }
        out
    }

    /// Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }

    /// CSeq as (number, method).
    pub fn cseq(&self) -> Option<(u32, String)> {
        let v = self.header("CSeq")?;
        let mut it = v.split_whitespace();
        let n = it.next()?.parse().ok()?;
        Some((n, it.next().unwrap_or("").to_string()))
    }

    /// The Via list, top (most recent hop) first.
    pub fn vias(&self) -> Vec<Via> {
        self.via_refs().iter().map(|v| Via::parse(v.raw)).collect()
    }

    /// [`Message::vias`] as slices of the message.
    pub fn via_refs(&self) -> Vec<ViaRef<'_>> {
        let mut out = Vec::new();
        for (n, v) in self.headers() {
            if n.eq_ignore_ascii_case("Via") {
                comma_parts(v, |p| out.push(ViaRef::parse(p)));
            }
        }
        out
    }

    /// A header parameter (e.g. `tag` of From/To).
    pub fn header_param(&self, name: &str, param: &str) -> Option<String> {
        let v = self.header(name)?;
        params_after_uri(v)
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(param))
            .and_then(|(_, v)| v)
    }

    /// One-line summary: `INVITE sip:bob@lab.example` or `200 OK`.
    pub fn summary(&self) -> String {
        match &self.start {
            StartLine::Request { method, uri } => format!("{method} {uri}"),
            StartLine::Response { code, reason } => format!("{code} {reason}"),
        }
    }
}

/// Parameters that follow the URI (after `>` when angle brackets are used).
fn params_after_uri(v: &str) -> Vec<(String, Option<String>)> {
    let rest = match v.rfind('>') {
        Some(i) => &v[i + 1..],
        None => match v.find(';') {
            Some(i) => &v[i..],
            None => "",
        },
    };
    parse_params(rest)
}

/// `;a=b;c` → [(a, Some(b)), (c, None)], quotes removed.
pub fn parse_params(s: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    params(s, |k, v| out.push((k.to_string(), v.map(str::to_string))));
    out
}

/// [`parse_params`] without allocating: each (name, value) in turn, as
/// slices of `s`.
fn params<'a>(s: &'a str, mut param: impl FnMut(&'a str, Option<&'a str>)) {
    let mut one = |p: &'a str| {
        let p = p.trim();
        if p.is_empty() {
            return;
        }
        match p.split_once('=') {
            Some((k, v)) => param(k.trim(), Some(v.trim().trim_matches('"'))),
            None => param(p, None),
        }
    };
    let mut quoted = false;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b';' if !quoted => {
                one(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    one(&s[start..]);
}

/// One Via hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// The value as on the wire.
    pub raw: String,
    /// UDP, TCP, TLS…
    pub transport: String,
    /// `host[:port]` the hop sent from.
    pub sent_by: String,
    /// Parameters in order.
    pub params: Vec<(String, Option<String>)>,
}

/// One Via hop as slices of its message: [`Via`] without allocating, for
/// callers that read a few parameters of every hop of every message.
#[derive(Debug, Clone, Copy)]
pub struct ViaRef<'a> {
    /// The value as on the wire (trimmed).
    pub raw: &'a str,
    /// UDP, TCP, TLS… as written (compare ignoring case).
    pub transport: &'a str,
    /// `host[:port]` the hop sent from.
    pub sent_by: &'a str,
    /// The parameters, from the first `;`.
    params: &'a str,
}

impl<'a> ViaRef<'a> {
    /// Parses `SIP/2.0/UDP host:port;params` (lenient).
    pub fn parse(v: &'a str) -> ViaRef<'a> {
        let v = v.trim();
        let (proto, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
        let transport = proto.rsplit('/').next().unwrap_or("");
        let rest = rest.trim_start();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (rest[..i].trim(), &rest[i..]),
            None => (rest.trim(), ""),
        };
        ViaRef {
            raw: v,
            transport,
            sent_by,
            params,
        }
    }

    /// A parameter's value (`Some("")` for a flag such as `rport`).
    pub fn param(&self, k: &str) -> Option<&'a str> {
        let mut found = None;
        self.params(|n, v| {
            if found.is_none() && n.eq_ignore_ascii_case(k) {
                found = Some(v);
            }
        });
        found
    }

    /// Every parameter in order: name, and value (`""` for a flag).  One
    /// pass, for a caller that reads several.
    pub fn params(&self, mut f: impl FnMut(&'a str, &'a str)) {
        params(self.params, |n, v| f(n, v.unwrap_or("")));
    }
}

impl Via {
    /// Parses `SIP/2.0/UDP host:port;params` (lenient).
    pub fn parse(v: &str) -> Via {
        let r = ViaRef::parse(v);
        Via {
            raw: r.raw.to_string(),
            transport: r.transport.to_ascii_uppercase(),
            sent_by: r.sent_by.to_string(),
            params: parse_params(r.params),
        }
    }

    /// A parameter's value (`Some("")` for a flag such as `rport`).
    pub fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// Host part of sent-by (IPv6 brackets kept).
    pub fn host(&self) -> &str {
        let s = self.sent_by.as_str();
        if s.starts_with('[') {
            return s.split(']').next().map(|h| &s[..h.len() + 1]).unwrap_or(s);
        }
        s.split(':').next().unwrap_or(s)
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Why a stream position does not start a SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// A whole message of `len` bytes is available.
    Message(usize),
    /// Not enough bytes yet.
    NeedMore,
    /// Not a SIP start line here.
    NotSip,
    /// Headers end but Content-Length is impossible; skip the header block (`len`).
    BadLength(usize, String),
}

fn line_end(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let i = memchr::memchr(b'\n', &b[from..])? + from;
    let start_of_eol = if i > from && b[i - 1] == b'\r' {
        i - 1
    } else {
        i
    };
    Some((start_of_eol, i + 1))
}

/// Where a stream's bytes that do not start with a SIP message
/// ([`Framed::NotSip`]) may resume: the start of the first later line that
/// is a start line; or, while more bytes may come (`at_end` false), of the
/// last line, which has no end yet and may become one; else `data.len()`.
/// One pass over the line ends.
pub fn next_start_line(data: &[u8], at_end: bool) -> usize {
    let mut ends = memchr::memchr_iter(b'\n', data);
    let Some(first) = ends.next() else {
        return data.len();
    };
    let mut line_start = first + 1;
    loop {
        match ends.next() {
            Some(end) => {
                let line = &data[line_start..end];
                if is_start_line(line.strip_suffix(b"\r").unwrap_or(line)) {
                    return line_start;
                }
                line_start = end + 1;
            }
            None if at_end => return data.len(),
            None => return line_start,
        }
    }
}

/// True when `line` is a SIP request or status line.
pub fn is_start_line(line: &[u8]) -> bool {
    let s = match std::str::from_utf8(line) {
        Ok(s) => s,
        Err(_) => return false,
    };
    if let Some(rest) = s.strip_prefix("SIP/2.0 ") {
        let code = rest.get(..3).unwrap_or("");
        return code.len() == 3
            && code.bytes().all(|c| c.is_ascii_digit())
            && rest.as_bytes().get(3).is_none_or(|&c| c == b' ');
    }
    let mut parts = s.split(' ');
    let (Some(m), Some(uri), Some(ver), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !m.is_empty()
        && m.len() <= 32
        && m.bytes()
            .all(|c| c.is_ascii_uppercase() || c == b'-' || c == b'_')
        && uri.contains(':')
        && ver == "SIP/2.0"
}

/// Where the header block ends (index after the blank line) and Content-Length.
fn header_block(b: &[u8]) -> Option<(usize, Option<Result<usize, String>>)> {
    let mut pos = 0;
    let mut cl = None;
    loop {
        let (eol, next) = line_end(b, pos)?;
        if eol == pos {
            return Some((next, cl));
        }
        let line = &b[pos..eol];
        if let Some(colon) = line.iter().position(|&c| c == b':') {
            let name = String::from_utf8_lossy(&line[..colon]);
            let n = name.trim();
            if n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("l") {
                let v = String::from_utf8_lossy(&line[colon + 1..]);
                cl = Some(
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| format!("Content-Length {:?} is not a number", v.trim())),
                );
            }
        }
        pos = next;
        if pos > MAX_HEADERS {
            return None;
        }
    }
}

/// Length of the CRLF keep-alives at the start of a stream buffer: RFC 5626
/// §3.5.1 pings (CRLFCRLF) and pongs (CRLF), which RFC 3261 §7.5 also says
/// to ignore before a start line.  They are not junk.
pub fn keepalive_prefix(b: &[u8]) -> usize {
    b.iter().take_while(|&&c| c == b'\r' || c == b'\n').count()
}

/// Frames a message at the start of a stream buffer.
pub fn frame_stream(b: &[u8]) -> Framed {
    let Some((eol, _)) = line_end(b, 0) else {
        return if b.len() > 2048 || (b.len() >= 8 && !could_start(b)) {
            Framed::NotSip
        } else {
            Framed::NeedMore
        };
    };
    if !is_start_line(&b[..eol]) {
        return Framed::NotSip;
    }
    let Some((hdr_end, cl)) = header_block(b) else {
        return if b.len() > MAX_HEADERS {
            Framed::BadLength(
                b.len().min(MAX_HEADERS),
                "header block larger than 64 KiB".into(),
            )
        } else {
            Framed::NeedMore
        };
    };
    let body = match cl {
        None => 0, // RFC 3261 §20.14 requires it on streams; tolerant: no body
        Some(Ok(n)) if n > MAX_BODY => {
            return Framed::BadLength(hdr_end, format!("Content-Length {n} exceeds {MAX_BODY}"));
        }
        Some(Ok(n)) => n,
        Some(Err(e)) => return Framed::BadLength(hdr_end, e),
    };
    if b.len() < hdr_end + body {
        Framed::NeedMore
    } else {
        Framed::Message(hdr_end + body)
    }
}

fn could_start(b: &[u8]) -> bool {
    b.iter()
        .take(8)
        .all(|c| c.is_ascii_alphanumeric() || *c == b'/' || *c == b'.' || *c == b' ' || *c == b'-')
}

/// The bytes and lines of a header block (after the start line) up to its
/// empty line, or to the end of `b` when it has none.
fn header_block_size(b: &[u8]) -> (usize, usize) {
    let mut start = 0;
    let mut lines = 0;
    for end in memchr::memchr_iter(b'\n', b) {
        let line = &b[start..end];
        if line.is_empty() || line == b"\r" {
            return (start, lines);
        }
        lines += 1;
        start = end + 1;
    }
    (b.len(), lines + 1)
}

/// Parses one message; `datagram` selects UDP body rules.
pub fn parse(b: &[u8], datagram: bool) -> Option<Message> {
    let (eol, mut pos) = line_end(b, 0)?;
    let first = std::str::from_utf8(&b[..eol]).ok()?;
    if !is_start_line(&b[..eol]) {
        return None;
    }
    let start = if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
        let code = rest[..3].parse().ok()?;
        StartLine::Response {
            code,
            reason: rest.get(4..).unwrap_or("").to_string(),
        }
    } else {
        let mut p = first.split(' ');
        StartLine::Request {
            method: p.next()?.to_string(),
            uri: p.next()?.to_string(),
        }
    };
    // room for every value and header at once: the header block's bytes
    // bound the values' (they are its lines, trimmed), its lines the
    // headers.  Grown from empty, a message took five or six reallocations
    // (a third of a million per GiB of the bench capture).  The bytes are
    // there, so this is no claimed length.
    let (block, lines) = header_block_size(&b[pos..]);
    let mut text = String::with_capacity(block.min(MAX_HEADERS));
    let mut headers: Vec<(Cow<'static, str>, u32, u32)> =
        Vec::with_capacity(lines.min(MAX_HEADERS / 2));
    // the block decoded once (one pass, a word at a time): its lines and
    // their halves are then slices of it, cut at ASCII bytes (line ends,
    // the colon), which are always character boundaries.  Decoding each
    // name and value on its own cost two calls a header, a million per GiB
    // of the bench capture.  A block that is not UTF-8 is decoded piece by
    // piece, with its invalid bytes replaced where they are.
    let base = pos;
    let block_text = std::str::from_utf8(&b[base..base + block]).ok();
    let decode = |from: usize, to: usize| -> Cow<'_, str> {
        match block_text.and_then(|t| t.get(from.checked_sub(base)?..to.checked_sub(base)?)) {
            Some(s) => Cow::Borrowed(s),
            None => super::text(&b[from..to]),
        }
    };
    let mut problems = Vec::new();
    let mut body_start = b.len();
    while pos < b.len() {
        let Some((e, next)) = line_end(b, pos) else {
            problems.push("header block not terminated by an empty line".into());
            body_start = b.len();
            break;
        };
        if e == pos {
            body_start = next;
            break;
        }
        let raw = &b[pos..e];
        if raw[0] == b' ' || raw[0] == b'\t' {
            let line = decode(pos, e);
            // folded continuation (RFC 3261 §7.3.1): the last value is the
            // last text, so it grows in place
            match headers.last_mut() {
                Some((_, _, end)) => {
                    text.push(' ');
                    text.push_str(line.trim());
                    *end = text.len() as u32;
                }
                None => problems.push("continuation line before any header".into()),
            }
        } else if let Some(colon) = raw.iter().position(|&c| c == b':') {
            // split at the byte before decoding: `:` is ASCII, never inside
            // a UTF-8 sequence nor swallowed by a lossy replacement, so the
            // halves decode as the line would (a char search and a decoding
            // of the whole line cost ~280 instructions a header)
            let a = text.len() as u32;
            text.push_str(decode(pos + colon + 1, e).trim());
            headers.push((
                canonical_name(&decode(pos, pos + colon)),
                a,
                text.len() as u32,
            ));
        } else {
            let line = decode(pos, e);
            problems.push(format!("header line without a colon: {:.40}", line));
        }
        pos = next;
        if pos > MAX_HEADERS {
            problems.push("header block larger than 64 KiB".into());
            body_start = b.len();
            break;
        }
    }
    text.shrink_to_fit();
    headers.shrink_to_fit();
    let value = |h: &(Cow<'static, str>, u32, u32)| &text[h.1 as usize..h.2 as usize];
    let content_length = headers
        .iter()
        .find(|h| h.0 == "Content-Length")
        .and_then(|h| value(h).trim().parse::<usize>().ok());
    if headers.iter().any(|h| h.0 == "Content-Length") && content_length.is_none() {
        problems.push("unreadable Content-Length".into());
    }
    let avail = &b[body_start.min(b.len())..];
    let body = match content_length {
        Some(n) if n <= avail.len() => &avail[..n],
        Some(n) => {
            problems.push(format!(
                "Content-Length {n} but {} body bytes present",
                avail.len()
            ));
            avail
        }
        None if datagram => avail,
        None => &[][..],
    };
    Some(Message {
        start,
        text,
        headers,
        body: Arc::from(body),
        body_len: body.len(),
        content_length,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The character-by-character splitters these replaced (they built every
    /// part in a fresh String): the slicing versions must agree with them.
    fn split_commas_by_char(v: &str) -> Vec<String> {
        let (mut out, mut cur) = (Vec::new(), String::new());
        let (mut depth, mut quoted, mut escaped) = (0i32, false, false);
        for c in v.chars() {
            if quoted {
                cur.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    quoted = false;
                }
                continue;
            }
            match c {
                '"' => quoted = true,
                '<' => depth += 1,
                '>' => depth = (depth - 1).max(0),
                ',' if depth == 0 => {
                    if !cur.trim().is_empty() {
                        out.push(cur.trim().to_string());
                    }
                    cur.clear();
                    continue;
                }
                _ => {}
            }
            cur.push(c);
        }
        if !cur.trim().is_empty() {
            out.push(cur.trim().to_string());
        }
        out
    }

    fn parse_params_by_char(s: &str) -> Vec<(String, Option<String>)> {
        let (mut parts, mut cur, mut quoted) = (Vec::new(), String::new(), false);
        for c in s.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    cur.push(c);
                }
                ';' if !quoted => parts.push(std::mem::take(&mut cur)),
                _ => cur.push(c),
            }
        }
        parts.push(cur);
        parts
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (
                    k.trim().to_string(),
                    Some(v.trim().trim_matches('"').to_string()),
                ),
                None => (p.to_string(), None),
            })
            .collect()
    }

    /// Via parsing as it was, on owned parameters from the splitter above.
    fn via_by_char(v: &str) -> Via {
        let v = v.trim();
        let (proto, rest) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
        let rest = rest.trim_start();
        let (sent_by, params) = match rest.find(';') {
            Some(i) => (
                rest[..i].trim().to_string(),
                parse_params_by_char(&rest[i..]),
            ),
            None => (rest.trim().to_string(), Vec::new()),
        };
        Via {
            raw: v.to_string(),
            transport: proto.rsplit('/').next().unwrap_or("").to_ascii_uppercase(),
            sent_by,
            params,
        }
    }

    proptest::proptest! {
        /// A header line split at its first `:` byte and then decoded gives
        /// what decoding the line and splitting at the first `:` gave.
        #[test]
        fn a_line_splits_at_the_colon_byte_as_decoded(line in proptest::collection::vec(
            proptest::prop_oneof![proptest::num::u8::ANY, proptest::strategy::Just(b':'), 0xc0u8..0xf5], 0..24)) {
            let whole = crate::proto::text(&line);
            let by_char = whole.split_once(':');
            let by_byte = line.iter().position(|&c| c == b':').map(|i| {
                (crate::proto::text(&line[..i]), crate::proto::text(&line[i + 1..]))
            });
            proptest::prop_assert_eq!(by_char, by_byte.as_ref().map(|(n, v)| (&**n, &**v)));
        }

        /// Headers cut out of the block decoded once read as each name and
        /// value decoded on its own, valid UTF-8 or not.
        #[test]
        fn a_header_block_decoded_once_reads_as_each_piece_decoded(lines in proptest::collection::vec(
            proptest::collection::vec(proptest::prop_oneof![
                b'a'..=b'z', proptest::strategy::Just(b':'), proptest::strategy::Just(b' '),
                0x80u8..0xc0, 0xc0u8..0xf5, proptest::strategy::Just(0xffu8)], 1..16), 0..8)) {
            let mut msg = b"INVITE sip:a@b SIP/2.0\r\n".to_vec();
            let mut want = Vec::new();
            for l in &lines {
                // a header line: not a continuation, with a colon
                let mut l = l.clone();
                if l[0] == b' ' {
                    l[0] = b'x';
                }
                l.push(b':');
                let colon = l.iter().position(|&c| c == b':').unwrap();
                want.push((
                    canonical_name(&crate::proto::text(&l[..colon])).into_owned(),
                    crate::proto::text(&l[colon + 1..]).trim().to_string(),
                ));
                msg.extend_from_slice(&l);
                msg.extend_from_slice(b"\r\n");
            }
            msg.extend_from_slice(b"\r\n");
            let m = parse(&msg, true).unwrap();
            let got: Vec<(String, String)> =
                m.headers().map(|(n, v)| (n.to_string(), v.to_string())).collect();
            proptest::prop_assert_eq!(got, want);
        }

        #[test]
        fn borrowed_vias_read_as_owned_ones(v in "(SIP/2.0/(udp|TLS) )?[a-z0-9.:]{0,12}(;[a-zA-Z-]{1,6}(=\"?[a-z0-9.; ]{0,6}\"?)?){0,5}") {
            let want = via_by_char(&v);
            proptest::prop_assert_eq!(&Via::parse(&v), &want);
            let r = ViaRef::parse(&v);
            proptest::prop_assert_eq!(r.transport.to_ascii_uppercase(), want.transport.clone());
            for k in ["branch", "received", "rport", "ms-received-port", "x", "BRANCH"] {
                proptest::prop_assert_eq!(r.param(k), want.param(k), "{}", k);
            }
        }

        #[test]
        fn splitting_by_slices_is_splitting_by_chars(v in "[a-z=;,<>\"\\\\ \té]{0,40}") {
            proptest::prop_assert_eq!(split_commas(&v), split_commas_by_char(&v));
            proptest::prop_assert_eq!(parse_params(&v), parse_params_by_char(&v));
        }

        #[test]
        fn unknown_names_keep_their_spelling(n in "[A-Za-z-]{0,30}") {
            let known = NAMES.iter().find(|(a, _)| a.eq_ignore_ascii_case(&n));
            let want = known.map_or(n.as_str(), |(_, full)| full);
            proptest::prop_assert_eq!(canonical_name(&n), want);
        }

        #[test]
        fn canonical_names_ignore_case(i in 0usize..NAMES.len(), upper in proptest::collection::vec(proptest::bool::ANY, 32)) {
            let (alias, full) = NAMES[i];
            let mixed: String = alias
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
                .collect();
            proptest::prop_assert_eq!(canonical_name(&format!(" {mixed} ")), full);
        }
    }

    const INVITE: &[u8] = b"INVITE sip:bob@lab.example SIP/2.0\r\n\
v: SIP/2.0/UDP 127.20.3.2:5060;branch=z9hG4bK-2;received=10.0.0.9, SIP/2.0/UDP 127.20.3.1:5060;branch=z9hG4bK-1;rport=5060\r\n\
Record-Route: <sip:127.20.3.2;lr;ms-route-sig=abc,def>\r\n\
Record-Route: <sip:127.20.3.4;lr>\r\n\
f: \"Alice, Lab\" <sip:alice@lab.example>;tag=7160a1;epid=0a0a\r\n\
t: <sip:bob@lab.example>\r\n\
i: 1-7160@127.20.3.1\r\n\
CSeq: 1 INVITE\r\n\
Subject: a long\r\n  folded header\r\n\
l:   4\r\n\
\r\n\
v=0\r\n";

    #[test]
    fn a_header_block_is_measured_to_its_empty_line() {
        let after_start = &INVITE[INVITE.iter().position(|&c| c == b'\n').unwrap() + 1..];
        let blank = after_start
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
            + 2;
        // 9 header lines and the folded continuation
        assert_eq!(header_block_size(after_start), (blank, 10));
        assert_eq!(header_block_size(b"a: 1\nb: 2\n\nbody"), (10, 2));
        assert_eq!(header_block_size(b"a: 1\r\nb: 2"), (10, 2));
        assert_eq!(header_block_size(b""), (0, 1));
        // the values fit in the room made for them: no reallocation
        let m = parse(INVITE, true).unwrap();
        assert!(m.text.len() <= blank && m.headers.len() <= 10);
    }

    #[test]
    fn bodies_nothing_reads_are_dropped_but_measured() {
        let notify = b"NOTIFY sip:a@x SIP/2.0\r\nCall-ID: n\r\nCSeq: 2 NOTIFY\r\n\
Content-Type: application/pidf+xml\r\nContent-Length: 11\r\n\r\n<presence/>";
        let mut m = parse(notify, true).unwrap();
        assert_eq!(m.body_length(), 11);
        m.drop_unread_body();
        assert!(m.body.is_empty());
        assert_eq!(m.body_length(), 11);
        let sdp = b"INVITE sip:b@x SIP/2.0\r\nCall-ID: i\r\nCSeq: 1 INVITE\r\n\
c: application/sdp\r\nl: 5\r\n\r\nv=0\r\n";
        let mut invite = parse(sdp, true).unwrap();
        invite.drop_unread_body();
        assert_eq!(
            &*invite.body, b"v=0\r\n",
            "SDP is read by the SIP model and ICE"
        );
    }

    /// The one-pass search for the next start line finds what looking for
    /// each line's end twice found (the finder's loop before it), on
    /// streams of SIP messages, junk and binary bytes cut at every offset.
    #[test]
    fn next_start_line_finds_what_the_two_pass_search_found() {
        fn two_pass(data: &[u8], at_end: bool) -> usize {
            let mut skip = data.len();
            let mut i = 0;
            while let Some(p) = data[i..].iter().position(|&c| c == b'\n') {
                let ls = i + p + 1;
                let le = data[ls..].iter().position(|&c| c == b'\n').map(|q| ls + q);
                match le {
                    Some(le) => {
                        let line = &data[ls..le];
                        if is_start_line(line.strip_suffix(b"\r").unwrap_or(line)) {
                            skip = ls;
                            break;
                        }
                    }
                    None if !at_end => {
                        skip = ls;
                        break;
                    }
                    None => {}
                }
                i = ls;
            }
            skip
        }
        let mut stream = b"junk\r\n\x16\x03\x01\x00\x05\n\n\r\n".to_vec();
        stream.extend_from_slice(INVITE);
        stream.extend_from_slice(b"\r\nnot a start line\nSIP/2.0 200 OK\r\nl: 0\r\n\r\n\x00\xff\n");
        for cut in 0..=stream.len() {
            for from in [0, 1, 5, 7] {
                let data = &stream[from.min(cut)..cut];
                for at_end in [false, true] {
                    assert_eq!(
                        next_start_line(data, at_end),
                        two_pass(data, at_end),
                        "{cut} {from} {at_end}"
                    );
                }
            }
        }
    }

    #[test]
    fn header_names_are_unique_lower_case_and_fit_the_lookup_buffer() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(NAMES
            .iter()
            .all(|(a, _)| a.len() <= 24 && *a == a.to_ascii_lowercase()));
    }

    #[test]
    fn compact_folded_and_comma_lists() {
        let m = parse(INVITE, false).unwrap();
        assert_eq!(m.summary(), "INVITE sip:bob@lab.example");
        assert_eq!(m.call_id(), Some("1-7160@127.20.3.1"));
        assert_eq!(m.cseq(), Some((1, "INVITE".into())));
        let vias = m.vias();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].param("received"), Some("10.0.0.9"));
        assert_eq!(vias[1].param("rport"), Some("5060"));
        assert_eq!(vias[1].sent_by, "127.20.3.1:5060");
        assert_eq!(vias[0].transport, "UDP");
        // the comma inside <...> does not split
        assert_eq!(
            m.values("Record-Route"),
            vec![
                "<sip:127.20.3.2;lr;ms-route-sig=abc,def>",
                "<sip:127.20.3.4;lr>"
            ]
        );
        assert_eq!(m.header("Subject"), Some("a long folded header"));
        assert_eq!(m.header_param("From", "tag"), Some("7160a1".into()));
        assert_eq!(&*m.body, b"v=0\r");
        assert_eq!(m.content_length, Some(4));
    }

    #[test]
    fn stream_framing() {
        let mut two = INVITE.to_vec();
        two.truncate(two.len() - 1); // exactly "v=0\r" body (4 bytes) … then the next
        let one_len = two.len();
        two.extend_from_slice(b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(frame_stream(&two), Framed::Message(one_len));
        assert_eq!(frame_stream(&two[..30]), Framed::NeedMore);
        assert_eq!(
            frame_stream(b"\x16\x03\x01\x02\x00 garbage that is not sip at all\r\n"),
            Framed::NotSip
        );
        let huge = b"INVITE sip:x@y SIP/2.0\r\nContent-Length: 2000000000\r\n\r\n";
        assert!(matches!(frame_stream(huge), Framed::BadLength(_, _)));
    }

    #[test]
    fn start_lines() {
        assert!(is_start_line(b"SIP/2.0 404 Not Found"));
        assert!(is_start_line(b"SERVICE sip:MRASLoc.x@y SIP/2.0"));
        assert!(!is_start_line(b"GET / HTTP/1.1"));
        assert!(!is_start_line(b"SIP/2.0 40 x"));
    }

    #[test]
    fn never_panics() {
        for n in 0..INVITE.len() {
            let _ = parse(&INVITE[..n], true);
            let _ = frame_stream(&INVITE[..n]);
        }
        let _ = parse(b"SIP/2.0 200 \xff\xfe\r\nVia: \"unterminated\r\n\r\n", true);
    }
}
