//! Role labels for addresses: "10.5.16.113 = Edge internal".  A user's
//! `--roles FILE` names the hosts of their deployment; built-in labels name
//! the Microsoft 365 ranges that Teams / Skype for Business Online media and
//! signalling use, so a hop to Microsoft's cloud is recognised without a file.
//!
//! File format (chosen to be trivially hand-written and also valid TOML when
//! keys are quoted): one `ADDRESS[/PREFIX] = NAME` per line, `#` starts a
//! comment, quotes around either side are optional.  The longest matching
//! prefix wins; user entries beat built-in ones of the same length.

use std::net::IpAddr;

/// Microsoft 365 "Optimize" ranges of the Teams / Skype for Business Online
/// media and signalling endpoint set (ID 11 of the published Microsoft 365
/// URLs and IP address ranges list: UDP 3478-3481 and TCP 443 to these).
pub const M365_RANGES: &[(&str, &str)] = &[
    ("13.107.64.0/18", "Microsoft 365 Teams/Skype media"),
    ("52.112.0.0/14", "Microsoft 365 Teams/Skype media"),
    ("52.122.0.0/15", "Microsoft 365 Teams/Skype media"),
    ("2603:1063::/38", "Microsoft 365 Teams/Skype media"),
];

#[derive(Debug, Clone)]
struct Entry {
    net: IpAddr,
    prefix: u8,
    name: String,
    user: bool,
}

/// An address → role map.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    entries: Vec<Entry>,
}

fn parse_net(s: &str) -> Result<(IpAddr, u8), String> {
    let (a, p) = s.split_once('/').unwrap_or((s, ""));
    let ip: IpAddr = a
        .trim()
        .parse()
        .map_err(|_| format!("{a:?} is not an IP address"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = if p.is_empty() {
        max
    } else {
        p.trim()
            .parse::<u8>()
            .ok()
            .filter(|&n| n <= max)
            .ok_or_else(|| format!("prefix /{p} is not 0..={max}"))?
    };
    Ok((ip, prefix))
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v) => u128::from(u32::from(v)) << 96,
        IpAddr::V6(v) => u128::from(v),
    }
}

fn contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    // an IPv4-mapped IPv6 address is looked up as IPv4
    let ip = match ip {
        IpAddr::V6(v) => v.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    if net.is_ipv4() != ip.is_ipv4() {
        return false;
    }
    if prefix == 0 {
        return true;
    }
    let shift = 128 - u32::from(prefix);
    (bits(net) >> shift) == (bits(ip) >> shift)
}

impl Roles {
    /// The built-in Microsoft 365 labels only.
    pub fn builtin() -> Roles {
        let mut r = Roles::default();
        for (net, name) in M365_RANGES {
            let (net, prefix) = parse_net(net).expect("built-in ranges are valid");
            r.entries.push(Entry {
                net,
                prefix,
                name: name.to_string(),
                user: false,
            });
        }
        r
    }

    /// Built-in labels plus the entries of a roles file's text.  An error
    /// names the line.
    pub fn with_file(text: &str) -> Result<Roles, String> {
        let mut r = Roles::builtin();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() || line.starts_with('[') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| format!("line {}: expected ADDRESS[/PREFIX] = NAME", n + 1))?;
            let unquote = |s: &str| s.trim().trim_matches('"').trim().to_string();
            let (net, prefix) =
                parse_net(&unquote(k)).map_err(|e| format!("line {}: {e}", n + 1))?;
            let name = unquote(v);
            if name.is_empty() {
                return Err(format!("line {}: empty role name", n + 1));
            }
            r.entries.push(Entry {
                net,
                prefix,
                name,
                user: true,
            });
        }
        Ok(r)
    }

    /// The role of an address: longest prefix, user entries first on a tie.
    pub fn label(&self, ip: IpAddr) -> Option<&str> {
        self.entries
            .iter()
            .filter(|e| contains(e.net, e.prefix, ip))
            .max_by_key(|e| (e.prefix, e.user))
            .map(|e| e.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn builtin_m365() {
        let r = Roles::builtin();
        assert!(r.label(ip("52.113.4.5")).unwrap().contains("Microsoft 365"));
        assert!(r.label(ip("13.107.64.1")).is_some());
        assert!(r.label(ip("13.107.128.1")).is_none());
        assert!(r.label(ip("2603:1063:0:1::5")).is_some());
        assert!(r.label(ip("::ffff:52.112.0.1")).is_some());
        assert!(r.label(ip("10.0.0.1")).is_none());
    }

    #[test]
    fn file_entries_longest_prefix_wins() {
        let r = Roles::with_file(
            "# lab\n10.5.16.113 = Edge internal\n\"10.5.16.0/24\" = \"Perimeter\"\n52.112.1.1 = my M365 relay # mine\n",
        )
        .unwrap();
        assert_eq!(r.label(ip("10.5.16.113")), Some("Edge internal"));
        assert_eq!(r.label(ip("10.5.16.7")), Some("Perimeter"));
        assert_eq!(r.label(ip("52.112.1.1")), Some("my M365 relay"));
        assert_eq!(r.label(ip("10.5.17.1")), None);
    }

    #[test]
    fn bad_lines_name_the_line() {
        assert!(Roles::with_file("x = y").unwrap_err().starts_with("line 1"));
        assert!(Roles::with_file("\n10.0.0.1/33 = a")
            .unwrap_err()
            .starts_with("line 2"));
        assert!(Roles::with_file("10.0.0.1 =").is_err());
        assert!(Roles::with_file("10.0.0.1").is_err());
        assert!(Roles::with_file("0.0.0.0/0 = all")
            .unwrap()
            .label(ip("1.2.3.4"))
            .is_some());
    }
}
