//! Edge cases written by the tests themselves (etherparse's PacketBuilder
//! plus small pcap/pcapng writers): each pins one rule of the reader or the
//! flow table.

use super::common::{flows_json, tcp_frame, temp_file, udp_frame, PcapWriter, PcapngWriter};

const C: [u8; 4] = [10, 0, 0, 1];
const S: [u8; 4] = [10, 0, 0, 2];

#[test]
fn reused_four_tuple_after_rst_is_a_new_tcp_stream() {
    let mut w = PcapWriter::new(1);
    w.packet(0, &tcp_frame((C, 40000), (S, 8057), 100, "S", &[]))
        .packet(1, &tcp_frame((S, 8057), (C, 40000), 500, "SA", &[]))
        .packet(2, &tcp_frame((C, 40000), (S, 8057), 101, "A", &[]))
        .packet(3, &tcp_frame((S, 8057), (C, 40000), 501, "RA", &[]))
        // same ports, new ISN: Wireshark starts tcp.stream 1
        .packet(10, &tcp_frame((C, 40000), (S, 8057), 9000, "S", &[]))
        // a retransmitted SYN with the same ISN stays in stream 1
        .packet(11, &tcp_frame((C, 40000), (S, 8057), 9000, "S", &[]));
    let (code, v, _) = flows_json(&temp_file("reuse.pcap", &w.bytes));
    assert_eq!(code, 0);
    let f = v["flows"].as_array().unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(
        (f[0]["first_frame"].as_u64(), f[0]["last_frame"].as_u64()),
        (Some(1), Some(4))
    );
    assert_eq!(f[0]["tcp"]["rst_by"], "server");
    assert_eq!(f[1]["stream"], 1);
    assert_eq!(f[1]["packets"]["to_server"], 2);
    assert_eq!(f[1]["tcp"]["handshake"], "syn-only");
}

#[test]
fn synack_first_makes_its_receiver_the_client() {
    let mut w = PcapWriter::new(1);
    w.packet(0, &tcp_frame((S, 443), (C, 50000), 7, "SA", &[]))
        .packet(1, &tcp_frame((C, 50000), (S, 443), 2, "A", b"x"));
    let (_, v, _) = flows_json(&temp_file("synack.pcap", &w.bytes));
    assert_eq!(v["flows"][0]["client"], "10.0.0.1:50000");
    assert_eq!(v["flows"][0]["tcp"]["handshake"], "synack-only");
}

#[test]
fn retransmission_out_of_order_and_missing_bytes() {
    let mut w = PcapWriter::new(1);
    w.packet(0, &tcp_frame((C, 5061), (S, 5061), 1000, "S", &[]))
        .packet(1, &tcp_frame((C, 5061), (S, 5061), 1001, "A", &[1; 100]))
        .packet(2, &tcp_frame((C, 5061), (S, 5061), 1001, "A", &[1; 100])) // retransmission
        .packet(3, &tcp_frame((C, 5061), (S, 5061), 1201, "A", &[3; 100])) // 100 bytes missing…
        .packet(4, &tcp_frame((C, 5061), (S, 5061), 1401, "A", &[5; 100])) // …and 100 more
        .packet(5, &tcp_frame((C, 5061), (S, 5061), 1101, "A", &[2; 100])); // first hole filled
    let (_, v, _) = flows_json(&temp_file("seq.pcap", &w.bytes));
    let t = &v["flows"][0]["tcp"];
    assert_eq!(t["retransmissions"]["to_server"], 1);
    assert_eq!(t["out_of_order"]["to_server"], 1);
    assert_eq!(t["missing_bytes"]["to_server"], 100);
    assert_eq!(t["handshake"], "syn-only");
}

#[test]
fn snaplen_cut_packets_are_counted_not_lost() {
    let mut w = PcapWriter::new(1);
    let big = tcp_frame((C, 1), (S, 2), 0, "A", &[0; 1400]);
    w.packet_cut(0, &big, 80)
        .packet_cut(1, &tcp_frame((C, 1), (S, 2), 1400, "A", &[0; 10]), 64);
    let (code, v, _) = flows_json(&temp_file("snap.pcap", &w.bytes));
    assert_eq!(code, 0);
    assert_eq!(v["capture"]["snaplen_cut_frames"], 1);
    let f = &v["flows"][0];
    assert_eq!(f["payload_bytes"]["to_server"], 1410, "wire payload counts");
    assert_eq!(
        f["tcp"]["missing_bytes"]["to_server"], 0,
        "snaplen is not loss"
    );
}

#[test]
fn truncated_file_keeps_everything_before_the_cut() {
    let mut w = PcapWriter::new(1);
    for i in 0..10 {
        w.packet(i, &udp_frame((C, 3478), (S, 50000), &[i as u8; 60]));
    }
    let cut = w.bytes.len() - 30;
    let (code, v, err) = flows_json(&temp_file("cut.pcap", &w.bytes[..cut]));
    assert_eq!(code, 3);
    assert_eq!(v["capture"]["frames"], 9);
    assert_eq!(v["capture"]["truncated"], true);
    assert_eq!(v["flows"][0]["packets"]["to_server"], 9);
    assert!(
        err.contains("truncated") && err.contains("after frame 9"),
        "{err}"
    );
}

#[test]
fn garbage_record_is_skipped_and_reading_resumes() {
    let mut w = PcapWriter::new(1);
    for i in 0..3 {
        w.packet(i, &udp_frame((C, 3478), (S, 50000), b"before"));
    }
    // a record header whose caplen lies (1 GB), followed by junk
    w.bytes
        .extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0x40]);
    w.bytes.extend_from_slice(&[0xEE; 37]);
    for i in 0..4 {
        w.packet(10 + i, &udp_frame((C, 3478), (S, 50000), b"after"));
    }
    let (code, v, err) = flows_json(&temp_file("garbage.pcap", &w.bytes));
    assert_eq!(code, 3, "{err}");
    assert_eq!(v["capture"]["frames"], 7);
    assert_eq!(v["capture"]["damaged_records"], 1);
    assert_eq!(v["capture"]["damage"][0]["skipped_bytes"], 53);
    assert!(err.contains("damaged record"), "{err}");
}

#[test]
fn unknown_link_type_is_counted_not_fatal() {
    let mut w = PcapWriter::new(147); // LINKTYPE_USER0
    w.packet(0, b"whatever");
    let (code, v, _) = flows_json(&temp_file("user0.pcap", &w.bytes));
    assert_eq!(code, 0);
    assert_eq!(v["capture"]["skipped"]["unsupported-link-type-147"], 1);
}

#[test]
fn pcapng_interfaces_with_their_own_resolution_and_all_packet_blocks() {
    let mut w = PcapngWriter::new();
    w.interface(1, None) // µs
        .interface(101, Some(9)) // raw IP, ns
        .interface(1, Some(0x80 | 10)); // 2^-10 s units (pcap-parser cannot decode these)
    let udp = udp_frame((C, 5060), (S, 5060), b"OPTIONS");
    let raw_ip = &udp[14..];
    w.epb(0, 1_000_000, &udp) // t = 1 s
        .epb(1, 2_000_000_000, raw_ip) // t = 2 s
        .epb(2, 3 * 1024, &udp) // t = 3 s
        .spb(&udp) // no timestamp: inherits 3 s
        .opb(0, 4_000_000, &udp); // t = 4 s
    let (code, v, _) = flows_json(&temp_file("multi.pcapng", &w.bytes));
    assert_eq!(code, 0);
    let c = &v["capture"];
    assert_eq!(c["format"], "pcapng");
    assert_eq!(c["frames"], 5);
    assert_eq!(c["first_time"], "1970-01-01T00:00:01.000000000Z");
    assert_eq!(c["last_time"], "1970-01-01T00:00:04.000000000Z");
    assert_eq!(v["flows"][0]["packets"]["to_server"], 5);
    assert_eq!(c["link_types"][1]["name"], "RAW");
}

#[test]
fn fragmented_udp_is_reassembled_in_its_last_frame() {
    use etherparse::{IpFragOffset, Ipv4Header};
    let payload: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    // the whole UDP datagram, then cut into IP fragments by hand
    let whole = udp_frame((C, 5060), (S, 5060), &payload);
    let l4 = &whole[14 + 20..];
    let mut w = PcapWriter::new(1);
    let chunks: Vec<(usize, &[u8])> = l4
        .chunks(1480)
        .enumerate()
        .map(|(i, c)| (i * 1480, c))
        .collect();
    let n = chunks.len();
    for (i, (off, chunk)) in chunks.into_iter().enumerate().rev() {
        let mut h =
            Ipv4Header::new(chunk.len() as u16, 64, etherparse::IpNumber::UDP, C, S).unwrap();
        h.identification = 77;
        h.more_fragments = i + 1 < n;
        h.fragment_offset = IpFragOffset::try_new((off / 8) as u16).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut f = vec![2u8; 6];
        f.extend_from_slice(&[1; 6]);
        f.extend_from_slice(&[0x08, 0x00]);
        h.write(&mut f).unwrap();
        f.extend_from_slice(chunk);
        w.packet(i as u64, &f); // sent last fragment first
    }
    let (code, v, _) = flows_json(&temp_file("frag.pcap", &w.bytes));
    assert_eq!(code, 0);
    assert_eq!(v["capture"]["ip_reassembly"]["reassembled"], 1);
    assert_eq!(v["capture"]["decoded"]["ip_fragments"], 3);
    let f = &v["flows"][0];
    assert_eq!(f["first_frame"], 3, "the datagram completes in frame 3");
    assert_eq!(f["payload_bytes"]["to_server"], 3000);
}
