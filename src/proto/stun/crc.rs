//! FINGERPRINT checks: CRC-32 (IEEE 802.3, reflected, as zlib) XOR
//! 0x5354554E over the message up to the FINGERPRINT attribute [RFC 8489
//! §14.7], and Microsoft's "legacy" variant whose CRC table has one entry
//! mistyped — 0x8BBEB8EA replaced by 0x08BBE8EA — inherited from WLM2009;
//! MS-ICE2 agents send every check twice, once with each CRC [MS-ICE2
//! §3.1.4.8.2, via libnice `stun/stuncrc32.c`].  The standard CRC is
//! `crc32fast`'s (already built for flate2; it folds 16 bytes a step with
//! carry-less multiplication where the CPU has it): the table loop below
//! is one dependent load per byte, and a FINGERPRINT covers the whole
//! message before it — on the bench capture that loop was 2 % of a
//! report's CPU.  The legacy CRC keeps the table loop, because its table is
//! a modified copy of the standard one; it runs only when the standard CRC
//! did not match.

/// The value XORed into the CRC (ASCII "STUN").
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;

const fn table(legacy: bool) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = if legacy && c == 0x8BBE_B8EA {
            0x08BB_E8EA
        } else {
            c
        };
        i += 1;
    }
    t
}

/// The standard table: the oracle the crate is tested against.
#[cfg(test)]
static STANDARD: [u32; 256] = table(false);
static LEGACY: [u32; 256] = table(true);

fn crc(t: &[u32; 256], data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = t[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Standard CRC-32.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// CRC-32 with Microsoft's mistyped table entry.
pub fn crc32_ms_legacy(data: &[u8]) -> u32 {
    crc(&LEGACY, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc(&STANDARD, b"123456789"), 0xCBF4_3926);
    }

    proptest::proptest! {
        /// The crate's CRC is the table's, at every length (its SIMD path
        /// starts at 64 bytes and folds 16 at a time, with a tail).
        #[test]
        fn the_crate_agrees_with_the_table(data in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            proptest::prop_assert_eq!(crc32(&data), crc(&STANDARD, &data));
        }
    }

    #[test]
    fn legacy_differs_only_where_the_typo_is_used() {
        assert_eq!(
            STANDARD
                .iter()
                .zip(LEGACY.iter())
                .filter(|(a, b)| a != b)
                .count(),
            1
        );
        assert_eq!(crc32_ms_legacy(b"123456789"), crc32(b"123456789"));
        // some input does hit the mistyped entry
        let hit =
            (0u16..=0xFFFF).any(|v| crc32(&v.to_be_bytes()) != crc32_ms_legacy(&v.to_be_bytes()));
        assert!(hit);
    }
}
