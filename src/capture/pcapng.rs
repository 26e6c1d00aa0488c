//! pcapng files: several sections (each with its own byte order), several
//! interfaces with their own link type, snapshot length, timestamp resolution
//! and offset; Enhanced, Simple and the obsolete Packet Blocks.
//!
//! Section Header, Interface Description and packet blocks are decoded with
//! `pcap-parser`.  Three things are done here instead, on purpose:
//! - `if_tsresol` with the high bit set (a power of two) is decoded here:
//!   pcap-parser 0.17's `build_ts_resolution` rejects every such value;
//! - `if_tsoffset` is read in the section's byte order (pcap-parser reads it
//!   little-endian even in big-endian sections);
//! - the obsolete Packet Block (type 2, pcapng spec appendix) is decoded by hand:
//!   pcap-parser hands it over as an unknown block.
//!
//! Block lengths are checked (minimum, multiple of 4, [`MAX_BLOCK`], trailing
//! copy equal) before any byte is requested, and damaged blocks are skipped by
//! scanning for the next block whose two length fields agree.

use pcap_parser::pcapng::{
    parse_block_be, parse_block_le, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_sectionheaderblock, Block,
};

use super::{
    CaptureError, Damage, Format, RawRecord, ReadStats, Source, Truncation, MAX_BLOCK,
    MAX_RESYNC_SCAN,
};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const OPB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;

/// Block types of the pcapng spec (and its registry) that a resync may land on.
const KNOWN_BLOCKS: &[u32] = &[
    SHB,
    IDB,
    OPB,
    SPB,
    4,
    5,
    EPB,
    7,
    8,
    9,
    0x0A,
    0x0BAD,
    0x4000_0BAD,
    0x8000_0001,
];

#[derive(Debug, Clone, Copy)]
struct Interface {
    link_type: u32,
    snaplen: u32,
    /// Timestamp units per second.
    units_per_sec: u64,
    /// Seconds added to every timestamp (`if_tsoffset`).
    offset_s: i64,
}

pub(super) struct NgState {
    big_endian: bool,
    interfaces: Vec<Interface>,
    ended: bool,
}

fn u32_at(b: &[u8], o: usize, be: bool) -> u32 {
    let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
    if be {
        u32::from_be_bytes(a)
    } else {
        u32::from_le_bytes(a)
    }
}

fn u16_at(b: &[u8], o: usize, be: bool) -> u16 {
    let a = [b[o], b[o + 1]];
    if be {
        u16::from_be_bytes(a)
    } else {
        u16::from_le_bytes(a)
    }
}

/// Units per second of an `if_tsresol` value (pcapng spec §4.2): high bit
/// clear = negative power of 10, set = negative power of 2.
fn resolution(tsresol: u8) -> Option<u64> {
    let n = (tsresol & 0x7f) as u32;
    if tsresol & 0x80 == 0 {
        10u64.checked_pow(n)
    } else {
        1u64.checked_shl(n).filter(|_| n < 64)
    }
}

impl NgState {
    pub(super) fn open(src: &mut Source, stats: &mut ReadStats) -> Result<NgState, CaptureError> {
        src.fill(28)?;
        let b = src.available();
        if b.len() < 28 {
            return Err(CaptureError::Unsupported(format!(
                "pcapng section header cut short ({} bytes)",
                b.len()
            )));
        }
        let big_endian = match u32::from_le_bytes([b[8], b[9], b[10], b[11]]) {
            0x1A2B_3C4D => false,
            0x4D3C_2B1A => true,
            other => {
                return Err(CaptureError::Unsupported(format!(
                    "pcapng byte-order magic {other:#010x} is neither 1a2b3c4d nor its swap"
                )))
            }
        };
        let (major, minor) = (u16_at(b, 12, big_endian), u16_at(b, 14, big_endian));
        if !(major == 1 && (minor == 0 || minor == 2)) {
            return Err(CaptureError::Unsupported(format!(
                "pcapng section header version {major}.{minor} (only 1.0 is defined)"
            )));
        }
        stats.format = Some(Format::Pcapng);
        stats.big_endian = big_endian;
        Ok(NgState {
            big_endian,
            interfaces: Vec::new(),
            ended: false,
        })
    }

    pub(super) fn next(
        &mut self,
        src: &mut Source,
        stats: &mut ReadStats,
    ) -> Result<Option<RawRecord>, CaptureError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            if !src.fill(12)? {
                let left = src.available().len();
                if left > 0 {
                    stats.truncated = Some(Truncation {
                        offset: src.offset(),
                        after_frame: stats.frames,
                        reason: format!("block header cut short ({left} of 12 bytes)"),
                    });
                }
                self.ended = true;
                return Ok(None);
            }
            let b = src.available();
            let btype_le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let mut be = self.big_endian;
            if btype_le == SHB {
                match u32::from_le_bytes([b[8], b[9], b[10], b[11]]) {
                    0x1A2B_3C4D => be = false,
                    0x4D3C_2B1A => be = true,
                    _ => {
                        self.damaged(src, stats, "section header with a bad byte-order magic")?;
                        continue;
                    }
                }
            }
            let btype = u32_at(b, 0, be);
            let len = u32_at(b, 4, be);
            if let Err(why) = check_len(len) {
                self.damaged(src, stats, &format!("block type {btype:#x}: {why}"))?;
                continue;
            }
            let len = len as usize;
            if !src.fill(len)? {
                stats.truncated = Some(Truncation {
                    offset: src.offset(),
                    after_frame: stats.frames,
                    reason: format!(
                        "block type {btype:#x} cut short ({} of {len} bytes)",
                        src.available().len()
                    ),
                });
                self.ended = true;
                return Ok(None);
            }
            let b = &src.available()[..len];
            if u32_at(b, len - 4, be) as usize != len {
                self.damaged(
                    src,
                    stats,
                    &format!(
                        "block type {btype:#x}: trailing length differs from leading length {len}"
                    ),
                )?;
                continue;
            }
            match btype {
                SHB => {
                    let ok = parse_sectionheaderblock(b)
                        .ok()
                        .map(|(_, s)| (s.major_version, s.minor_version));
                    match ok {
                        Some((1, 0)) | Some((1, 2)) => {
                            self.big_endian = be;
                            self.interfaces.clear();
                            stats.sections += 1;
                            src.consume(len);
                        }
                        Some((ma, mi)) => {
                            // A later section in a version we do not know: its
                            // blocks cannot be trusted; skip to the next section.
                            self.damaged(src, stats, &format!("section header version {ma}.{mi}"))?;
                        }
                        None => self.damaged(src, stats, "undecodable section header")?,
                    }
                }
                IDB => {
                    let parsed = if be {
                        parse_interfacedescriptionblock_be(b)
                    } else {
                        parse_interfacedescriptionblock_le(b)
                    };
                    match parsed {
                        Ok((_, idb)) => {
                            let mut units = resolution(idb.if_tsresol).unwrap_or(1_000_000);
                            if units == 0 {
                                units = 1_000_000;
                            }
                            let mut offset_s = 0i64;
                            for opt in &idb.options {
                                // if_tsoffset (code 14), in the section's byte order
                                if opt.code.0 == 14 && opt.value.len() >= 8 {
                                    let mut a = [0u8; 8];
                                    a.copy_from_slice(&opt.value[..8]);
                                    offset_s = if be {
                                        i64::from_be_bytes(a)
                                    } else {
                                        i64::from_le_bytes(a)
                                    };
                                }
                            }
                            self.interfaces.push(Interface {
                                link_type: idb.linktype.0 as u16 as u32,
                                snaplen: idb.snaplen,
                                units_per_sec: units,
                                offset_s,
                            });
                            stats.interfaces += 1;
                            src.consume(len);
                        }
                        Err(_) => self.damaged(src, stats, "undecodable interface description")?,
                    }
                }
                EPB | SPB | OPB => match self.packet(b, btype, be) {
                    Ok(mut rec) => {
                        rec.record_len = len;
                        return Ok(Some(rec));
                    }
                    Err(why) => {
                        let offset = src.offset();
                        src.consume(len);
                        stats.record_damage(Damage {
                            offset,
                            after_frame: stats.frames,
                            reason: why,
                            skipped_bytes: len as u64,
                        });
                    }
                },
                _ => src.consume(len), // statistics, name resolution, secrets, custom…
            }
        }
    }

    /// Decodes a packet block that passed the length checks.
    fn packet(&self, b: &[u8], btype: u32, be: bool) -> Result<RawRecord, String> {
        let (if_id, ts_units, caplen, origlen, data_off) = match btype {
            EPB => {
                let parsed = if be {
                    parse_block_be(b)
                } else {
                    parse_block_le(b)
                };
                match parsed {
                    Ok((_, Block::EnhancedPacket(epb))) => (
                        epb.if_id,
                        Some(((epb.ts_high as u64) << 32) | epb.ts_low as u64),
                        epb.caplen,
                        epb.origlen,
                        28usize,
                    ),
                    _ => return Err("undecodable enhanced packet block".into()),
                }
            }
            SPB => {
                let parsed = if be {
                    parse_block_be(b)
                } else {
                    parse_block_le(b)
                };
                match parsed {
                    Ok((_, Block::SimplePacket(spb))) => {
                        let iface = self
                            .interfaces
                            .first()
                            .ok_or("simple packet block before any interface description")?;
                        let mut cap = spb.origlen.min(spb.data.len() as u32);
                        if iface.snaplen > 0 {
                            cap = cap.min(iface.snaplen);
                        }
                        (0, None, cap, spb.origlen, 12usize)
                    }
                    _ => return Err("undecodable simple packet block".into()),
                }
            }
            _ => {
                // Obsolete Packet Block: if_id u16, drops u16, ts high, ts low,
                // caplen, origlen, data (pcapng spec, appendix "Packet Block").
                if b.len() < 32 {
                    return Err("packet block shorter than its header".into());
                }
                (
                    u16_at(b, 8, be) as u32,
                    Some(((u32_at(b, 12, be) as u64) << 32) | u32_at(b, 16, be) as u64),
                    u32_at(b, 20, be),
                    u32_at(b, 24, be),
                    28usize,
                )
            }
        };
        let iface = self
            .interfaces
            .get(if_id as usize)
            .ok_or_else(|| format!("packet for interface {if_id}, which was never described"))?;
        // data must fit between the header and the 4-byte trailer
        if data_off + caplen as usize > b.len() - 4 {
            return Err(format!(
                "packet claims {caplen} captured bytes, its block holds {}",
                b.len().saturating_sub(data_off + 4)
            ));
        }
        let ts_ns = ts_units.map(|u| {
            let ns = (u as u128) * 1_000_000_000 / iface.units_per_sec as u128;
            let ns = i64::try_from(ns).unwrap_or(i64::MAX);
            ns.saturating_add(iface.offset_s.saturating_mul(1_000_000_000))
        });
        Ok(RawRecord {
            start: data_off,
            len: caplen as usize,
            record_len: 0,
            orig_len: origlen,
            ts_ns,
            link_type: iface.link_type,
            interface: if_id,
        })
    }

    /// Records a damaged block at the current offset and scans for the next good one.
    fn damaged(
        &mut self,
        src: &mut Source,
        stats: &mut ReadStats,
        why: &str,
    ) -> Result<(), CaptureError> {
        let offset = src.offset();
        let skipped = self.resync(src)?;
        stats.record_damage(Damage {
            offset,
            after_frame: stats.frames,
            reason: why.to_string(),
            skipped_bytes: skipped,
        });
        Ok(())
    }

    /// Moves to the next offset holding a known block type whose leading and
    /// trailing lengths agree.  Always makes progress; bounded scan.
    fn resync(&mut self, src: &mut Source) -> Result<u64, CaptureError> {
        src.consume(1);
        let mut skipped = 1u64;
        let window = 1 << 20;
        while (skipped as usize) < MAX_RESYNC_SCAN {
            src.fill(window)?;
            let b = src.available();
            if b.len() < 12 {
                let n = b.len();
                src.consume(n);
                self.ended = true;
                return Ok(skipped + n as u64);
            }
            let limit = b.len() - 11;
            let mut found = None;
            for i in 0..limit {
                let t_le = u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
                let be = if t_le == SHB {
                    u32::from_le_bytes([b[i + 8], b[i + 9], b[i + 10], b[i + 11]]) != 0x1A2B_3C4D
                } else {
                    self.big_endian
                };
                let t = u32_at(b, i, be);
                if !KNOWN_BLOCKS.contains(&t) {
                    continue;
                }
                let len = u32_at(b, i + 4, be);
                if check_len(len).is_err() {
                    continue;
                }
                let end = i + len as usize;
                if end > b.len() {
                    // cannot verify the trailer inside this window: accept only
                    // if the input ends here (the next read reports truncation)
                    if b.len() < window {
                        found = Some(i);
                        break;
                    }
                    continue;
                }
                if u32_at(b, end - 4, be) == len {
                    found = Some(i);
                    break;
                }
            }
            let short = b.len() < window;
            match found {
                Some(i) => {
                    src.consume(i);
                    return Ok(skipped + i as u64);
                }
                None => {
                    src.consume(limit);
                    skipped += limit as u64;
                    if short {
                        // scanned to the end of the input
                        let n = src.available().len();
                        src.consume(n);
                        self.ended = true;
                        return Ok(skipped + n as u64);
                    }
                }
            }
        }
        self.ended = true;
        Ok(skipped)
    }
}

fn check_len(len: u32) -> Result<(), String> {
    if len < 12 {
        Err(format!("block length {len} is below the minimum of 12"))
    } else if len % 4 != 0 {
        Err(format!("block length {len} is not a multiple of 4"))
    } else if len > MAX_BLOCK {
        Err(format!(
            "block length {len} exceeds the maximum of {MAX_BLOCK}"
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsresol_power_of_two_is_decoded() {
        assert_eq!(resolution(6), Some(1_000_000));
        assert_eq!(resolution(9), Some(1_000_000_000));
        assert_eq!(resolution(0x80 | 10), Some(1024));
        assert_eq!(resolution(0x80 | 64), None);
        assert_eq!(resolution(20), None);
    }

    #[test]
    fn block_length_rules() {
        assert!(check_len(28).is_ok());
        assert!(check_len(8).is_err());
        assert!(check_len(30).is_err());
        assert!(check_len(u32::MAX - 3).is_err());
    }
}
