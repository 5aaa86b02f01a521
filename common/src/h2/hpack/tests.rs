//! RFC 7541 Appendix C, every example, decoded (and encoded where our indexing policy
//! makes the same choices as the RFC's encoder), plus limits and round trips.

use super::table::STATIC;
use super::*;
use proptest::prelude::*;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

type Fields = Vec<(String, String)>;

fn decode(d: &mut Decoder, block: &[u8]) -> Result<Fields, DecodeError> {
    let mut arena = Vec::new();
    let mut spans = Vec::new();
    d.decode(block, &mut arena, &mut spans)?;
    Ok(spans
        .iter()
        .map(|f| {
            let n = String::from_utf8(f.name(&arena).to_vec()).unwrap();
            let v = String::from_utf8(f.value(&arena).to_vec()).unwrap();
            (n, v)
        })
        .collect())
}

fn fields(list: &[(&str, &str)]) -> Fields {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn table_of(t: &table::DynamicTable) -> Fields {
    (0..t.len())
        .map(|i| {
            let (n, v) = t.get(i).unwrap();
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn c2_single_representations() {
    // C.2.1 literal with indexing, C.2.2 without, C.2.3 never indexed, C.2.4 indexed.
    let mut d = Decoder::new(4096, 1 << 16);
    let got = decode(
        &mut d,
        &unhex("400a637573746f6d2d6b65790d637573746f6d2d686561646572"),
    );
    assert_eq!(got.unwrap(), fields(&[("custom-key", "custom-header")]));
    assert_eq!(
        table_of(d.table()),
        fields(&[("custom-key", "custom-header")])
    );
    assert_eq!(d.table().size(), 55);

    let mut d = Decoder::new(4096, 1 << 16);
    let got = decode(&mut d, &unhex("040c2f73616d706c652f70617468"));
    assert_eq!(got.unwrap(), fields(&[(":path", "/sample/path")]));
    assert!(d.table().is_empty());

    let mut d = Decoder::new(4096, 1 << 16);
    let block = unhex("100870617373776f726406736563726574");
    let (mut arena, mut spans) = (Vec::new(), Vec::new());
    d.decode(&block, &mut arena, &mut spans).unwrap();
    assert_eq!(
        (spans[0].name(&arena), spans[0].value(&arena)),
        (&b"password"[..], &b"secret"[..])
    );
    assert!(spans[0].never_indexed);
    assert!(d.table().is_empty());

    let mut d = Decoder::new(4096, 1 << 16);
    assert_eq!(
        decode(&mut d, &[0x82]).unwrap(),
        fields(&[(":method", "GET")])
    );
    assert!(d.table().is_empty());
}

struct Step {
    hex: &'static str,
    fields: &'static [(&'static str, &'static str)],
    table: &'static [(&'static str, &'static str)],
    size: usize,
    /// Our encoder makes the RFC's choices for this block (it keeps set-cookie out of the
    /// table, the RFC's example indexes it).
    same_encoding: bool,
}

const REQ1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQ_T1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQ_T2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQ_T3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

const RES1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RES2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RES3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
];
const RES_T1: &[(&str, &str)] = &[
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
    (":status", "302"),
];
const RES_T2: &[(&str, &str)] = &[
    (":status", "307"),
    ("location", "https://www.example.com"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("cache-control", "private"),
];
const RES_T3: &[(&str, &str)] = &[
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
    ("content-encoding", "gzip"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
];

fn run_sequence(table_size: usize, huffman: bool, steps: &[Step]) {
    let mut d = Decoder::new(table_size, 1 << 16);
    d.set_max_allowed(table_size);
    let mut e = Encoder::new(table_size);
    e.set_huffman(huffman);
    // The RFC's examples start from a table already sized, without an update in the block.
    let mut discard = Vec::new();
    e.start_block(&mut discard);
    let mut pending = Vec::new();
    if table_size < DEFAULT_TABLE_SIZE {
        // The decoder must see the reduction the encoder owes; the RFC examples assume it
        // was applied already, so apply it out of band.
        d.decode(&discard, &mut Vec::new(), &mut Vec::new())
            .unwrap();
    }
    for (i, step) in steps.iter().enumerate() {
        let block = unhex(step.hex);
        assert_eq!(
            decode(&mut d, &block).unwrap(),
            fields(step.fields),
            "step {i}"
        );
        assert_eq!(table_of(d.table()), fields(step.table), "step {i} table");
        assert_eq!(d.table().size(), step.size, "step {i} size");

        pending.clear();
        e.start_block(&mut pending);
        for (n, v) in step.fields {
            e.field(n.as_bytes(), v.as_bytes(), false, &mut pending);
        }
        if step.same_encoding {
            assert_eq!(pending, block, "step {i} encoding");
            assert_eq!(
                table_of(e.table()),
                fields(step.table),
                "step {i} encoder table"
            );
        }
        // Whatever we chose, a fresh decoder in step with our encoder reads it back.
    }
}

#[test]
fn c3_requests_without_huffman() {
    run_sequence(
        4096,
        false,
        &[
            Step {
                hex: "828684410f7777772e6578616d706c652e636f6d",
                fields: REQ1,
                table: REQ_T1,
                size: 57,
                same_encoding: true,
            },
            Step {
                hex: "828684be58086e6f2d6361636865",
                fields: REQ2,
                table: REQ_T2,
                size: 110,
                same_encoding: true,
            },
            Step {
                hex: "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
                fields: REQ3,
                table: REQ_T3,
                size: 164,
                same_encoding: true,
            },
        ],
    );
}

#[test]
fn c4_requests_with_huffman() {
    run_sequence(
        4096,
        true,
        &[
            Step {
                hex: "828684418cf1e3c2e5f23a6ba0ab90f4ff",
                fields: REQ1,
                table: REQ_T1,
                size: 57,
                same_encoding: true,
            },
            Step {
                hex: "828684be5886a8eb10649cbf",
                fields: REQ2,
                table: REQ_T2,
                size: 110,
                same_encoding: true,
            },
            Step {
                hex: "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
                fields: REQ3,
                table: REQ_T3,
                size: 164,
                same_encoding: true,
            },
        ],
    );
}

#[test]
fn c5_responses_without_huffman() {
    run_sequence(256, false, &[
        Step { hex: "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d706c652e636f6d", fields: RES1, table: RES_T1, size: 222, same_encoding: true },
        Step { hex: "4803333037c1c0bf", fields: RES2, table: RES_T2, size: 222, same_encoding: true },
        Step { hex: "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b2076657273696f6e3d31", fields: RES3, table: RES_T3, size: 215, same_encoding: false },
    ]);
}

#[test]
fn c6_responses_with_huffman() {
    run_sequence(256, true, &[
        Step { hex: "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3", fields: RES1, table: RES_T1, size: 222, same_encoding: true },
        // "307" is 3 bytes raw and 3 Huffman-coded: we send it raw, the RFC coded.
        Step { hex: "4883640effc1c0bf", fields: RES2, table: RES_T2, size: 222, same_encoding: false },
        Step { hex: "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007", fields: RES3, table: RES_T3, size: 215, same_encoding: false },
    ]);
}

#[test]
fn decoder_errors() {
    let cases: &[(&str, &[u8], DecodeError)] = &[
        ("index 0", &[0x80], DecodeError::InvalidIndex(0)),
        ("index past static", &[0xbe], DecodeError::InvalidIndex(62)),
        (
            "name index past static",
            &[0x7f, 0x00, 0x01, b'a'],
            DecodeError::InvalidIndex(63),
        ),
        ("truncated integer", &[0xff], DecodeError::Truncated),
        (
            "truncated string",
            &[0x40, 0x0a, b'a'],
            DecodeError::Truncated,
        ),
        ("missing value", &[0x40, 0x01, b'a'], DecodeError::Truncated),
        (
            "bad huffman",
            &[0x40, 0x81, 0x00, 0x00],
            DecodeError::Huffman,
        ),
        (
            "size update above setting",
            &[0x3f, 0xe2, 0x1f],
            DecodeError::SizeUpdateTooLarge(4097),
        ),
        (
            "size update after a field",
            &[0x82, 0x20],
            DecodeError::SizeUpdateNotFirst,
        ),
        (
            "integer overflow",
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            DecodeError::IntegerOverflow,
        ),
    ];
    for (name, block, want) in cases {
        let mut d = Decoder::new(4096, 1 << 16);
        d.set_max_allowed(4096);
        assert_eq!(decode(&mut d, block), Err(*want), "{name}");
        assert!(want.is_compression_error());
    }
}

#[test]
fn size_updates() {
    let mut d = Decoder::new(4096, 1 << 16);
    d.set_max_allowed(4096);
    // Two updates at the start are fine (4.2: the smallest, then the final).
    assert_eq!(
        decode(&mut d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82]).unwrap(),
        fields(&[(":method", "GET")])
    );
    assert_eq!(d.table().max_size(), 4096);
    // Entries then an update to 0 evicts them all.
    decode(
        &mut d,
        &unhex("400a637573746f6d2d6b65790d637573746f6d2d686561646572"),
    )
    .unwrap();
    assert_eq!(d.table().len(), 1);
    decode(&mut d, &[0x20]).unwrap();
    assert!(d.table().is_empty());
    assert_eq!(d.table().max_size(), 0);
    // We lower our setting below the table's size: the next block must start with an update.
    let mut d = Decoder::new(4096, 1 << 16);
    d.set_max_allowed(100);
    assert_eq!(decode(&mut d, &[0x82]), Err(DecodeError::MissingSizeUpdate));
    let mut d = Decoder::new(4096, 1 << 16);
    d.set_max_allowed(100);
    assert_eq!(
        decode(&mut d, &[0x3f, 0x46]),
        Err(DecodeError::SizeUpdateTooLarge(101))
    );
    let mut d = Decoder::new(4096, 1 << 16);
    d.set_max_allowed(100);
    assert!(decode(&mut d, &[0x3f, 0x45, 0x82]).is_ok());
}

#[test]
fn header_list_limit_is_checked_while_decoding() {
    // One 100-byte entry indexed, then referenced 10,000 times: an HPACK bomb of 10 KB
    // that would decode to 1.3 MB.
    let mut block = vec![0x40, 0x01, b'x', 0x64];
    block.extend(std::iter::repeat_n(b'v', 100));
    block.extend(std::iter::repeat_n(0xbe, 10_000));
    let mut d = Decoder::new(4096, 8192);
    let (mut arena, mut spans) = (Vec::new(), Vec::new());
    let got = d.decode(&block, &mut arena, &mut spans);
    assert_eq!(got, Err(DecodeError::HeaderListTooLarge));
    assert!(!DecodeError::HeaderListTooLarge.is_compression_error());
    // Fields up to the limit were kept, nothing past it: memory stays bounded.
    assert_eq!(spans.len(), 8192 / 133);
    assert!(arena.len() <= 8192);
    // The table stayed in step: the next block can still use the entry.
    let (mut arena, mut spans) = (Vec::new(), Vec::new());
    d.decode(&[0xbe], &mut arena, &mut spans).unwrap();
    assert_eq!(spans[0].value(&arena).len(), 100);
}

#[test]
fn encoder_indexes_repeated_response_headers() {
    let mut e = Encoder::new(4096);
    let response: &[(&[u8], &[u8])] = &[
        (b":status", b"200"),
        (b"server", b"uring-server"),
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"13"),
    ];
    let mut first = Vec::new();
    e.encode(response.iter().copied(), &mut first);
    let mut second = Vec::new();
    e.encode(response.iter().copied(), &mut second);
    // :status 200 is static (1 byte); the three others now one byte each.
    assert_eq!(second.len(), 4, "{second:02x?}");
    assert!(first.len() > 20);
    let mut d = Decoder::new(4096, 1 << 16);
    let want: Fields = response
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    assert_eq!(decode(&mut d, &first).unwrap(), want);
    assert_eq!(decode(&mut d, &second).unwrap(), want);
}

#[test]
fn encoder_keeps_credentials_out_and_honours_sensitive() {
    let mut e = Encoder::new(4096);
    let mut out = Vec::new();
    e.start_block(&mut out);
    e.field(b"authorization", b"Bearer secret", false, &mut out);
    e.field(b"x-token", b"abc", true, &mut out);
    assert!(e.table().is_empty());
    let mut d = Decoder::new(4096, 1 << 16);
    let (mut arena, mut spans) = (Vec::new(), Vec::new());
    d.decode(&out, &mut arena, &mut spans).unwrap();
    assert!(!spans[0].never_indexed);
    assert!(spans[1].never_indexed);
    assert_eq!(spans[1].value(&arena), b"abc");
}

#[test]
fn encoder_table_follows_peer_setting_and_cap() {
    let mut e = Encoder::new(1024);
    let mut d = Decoder::new(4096, 1 << 16);
    let mut out = Vec::new();
    // Our cap (1024) is below the default: the first block announces it.
    e.encode([(&b"x-a"[..], &b"1"[..])], &mut out);
    assert_eq!(out[0] & 0xe0, 0x20);
    decode(&mut d, &out).unwrap();
    assert_eq!(d.table().max_size(), 1024);
    // The peer lowers to 0 and raises to 512 before our next block: both updates go out.
    e.set_peer_max(0);
    e.set_peer_max(512);
    out.clear();
    e.encode([(&b"x-a"[..], &b"1"[..])], &mut out);
    assert_eq!(&out[..3], &[0x20, 0x3f, 0xe1]);
    assert_eq!(decode(&mut d, &out).unwrap(), fields(&[("x-a", "1")]));
    assert_eq!(d.table().max_size(), 512);
    assert_eq!(table_of(d.table()), table_of(e.table()));
}

proptest! {
    /// Any sequence of blocks through one encoder and one decoder comes back intact, and
    /// both tables stay identical.
    #[test]
    fn encode_decode_round_trip(
        blocks in proptest::collection::vec(
            proptest::collection::vec(
                (prop_oneof![
                    (0usize..61).prop_map(|i| STATIC[i].0.to_vec()),
                    "[a-z-]{1,12}".prop_map(String::into_bytes),
                ], proptest::collection::vec(any::<u8>(), 0..40), any::<bool>()),
                0..8),
            1..6),
        cap in 0usize..5000, peer in proptest::option::of(0usize..5000),
    ) {
        let mut e = Encoder::new(cap);
        if let Some(p) = peer { e.set_peer_max(p); }
        // The decoder's setting is what the encoder was told as the peer's.
        let mut d = Decoder::new(peer.unwrap_or(DEFAULT_TABLE_SIZE), 1 << 20);
        for block in &blocks {
            let mut out = Vec::new();
            e.start_block(&mut out);
            for (n, v, s) in block { e.field(n, v, *s, &mut out); }
            let (mut arena, mut spans) = (Vec::new(), Vec::new());
            d.decode(&out, &mut arena, &mut spans).unwrap();
            prop_assert_eq!(spans.len(), block.len());
            for (span, (n, v, s)) in spans.iter().zip(block) {
                prop_assert_eq!(span.name(&arena), &n[..]);
                prop_assert_eq!(span.value(&arena), &v[..]);
                prop_assert_eq!(span.never_indexed, *s);
            }
            prop_assert_eq!(table_of_bytes(d.table()), table_of_bytes(e.table()));
        }
    }

    #[test]
    fn arbitrary_blocks_never_panic(block in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut d = Decoder::new(4096, 4096);
        let (mut arena, mut spans) = (Vec::new(), Vec::new());
        let _ = d.decode(&block, &mut arena, &mut spans);
        prop_assert!(arena.len() <= 4096 + 200 * 8 / 5 + 4096);
    }
}

fn table_of_bytes(t: &table::DynamicTable) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..t.len())
        .map(|i| {
            let (n, v) = t.get(i).unwrap();
            (n.to_vec(), v.to_vec())
        })
        .collect()
}
