use super::*;
use proptest::prelude::*;

/// Build a raw frame: header fields as given, then the payload.
fn raw(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    FrameHead::new(Kind::from_u8(kind), flags, stream, payload.len() as u32).encode(&mut out);
    out.extend_from_slice(payload);
    out
}

fn parse(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    let head = FrameHead::parse(bytes).expect("a whole header");
    assert_eq!(bytes.len(), FRAME_HEAD_LEN + head.len as usize);
    Frame::parse(head, &bytes[FRAME_HEAD_LEN..])
}

const CONN_PROTO: Result<(), FrameError> = Err(FrameError::Connection(ErrorCode::PROTOCOL_ERROR));
const CONN_SIZE: Result<(), FrameError> = Err(FrameError::Connection(ErrorCode::FRAME_SIZE_ERROR));
const CONN_FLOW: Result<(), FrameError> =
    Err(FrameError::Connection(ErrorCode::FLOW_CONTROL_ERROR));
const fn stream_err(id: u32, code: ErrorCode) -> Result<(), FrameError> {
    Err(FrameError::Stream(id, code))
}
const OK: Result<(), FrameError> = Ok(());

#[test]
fn header_round_trip_and_reserved_bit() {
    let mut out = Vec::new();
    FrameHead::new(Kind::Headers, 0x25, 0x7fff_ffff, 0xff_ffff).encode(&mut out);
    assert_eq!(out, [0xff, 0xff, 0xff, 1, 0x25, 0x7f, 0xff, 0xff, 0xff]);
    // The reserved bit is ignored on receipt.
    let h = FrameHead::parse(&[0, 0, 4, 8, 0, 0x80, 0, 0, 3]).unwrap();
    assert_eq!(h, FrameHead::new(Kind::WindowUpdate, 0, 3, 4));
    assert_eq!(FrameHead::parse(&[0; 8]), None);
    assert_eq!(Kind::from_u8(0xfa), Kind::Unknown(0xfa));
}

/// Every per-frame rule of RFC 9113 section 6, one line each.
#[test]
#[rustfmt::skip]
fn frame_rules() {
    let p5 = [0, 0, 0, 1, 16];
    let self_dep = [0, 0, 0, 3, 16];
    let cases: &[(&str, Vec<u8>, Result<(), FrameError>)] = &[
        ("DATA on stream 0", raw(0, 0, 0, b"x"), CONN_PROTO),
        ("DATA", raw(0, 1, 1, b"x"), OK),
        ("DATA padded ok", raw(0, 8, 1, &[2, b'x', 0, 0]), OK),
        ("DATA pad = payload", raw(0, 8, 1, &[4, b'x', 0, 0]), CONN_PROTO),
        ("DATA pad only byte 0", raw(0, 8, 1, &[0]), OK),
        ("DATA all padding", raw(0, 8, 1, &[3, 0, 0, 0]), OK),
        ("DATA pad 1 no room", raw(0, 8, 1, &[1]), CONN_PROTO),
        ("DATA padded empty", raw(0, 8, 1, &[]), CONN_SIZE),
        ("HEADERS on stream 0", raw(1, 4, 0, b"\x82"), CONN_PROTO),
        ("HEADERS", raw(1, 5, 1, b"\x82"), OK),
        ("HEADERS priority", raw(1, 0x24, 3, &[0, 0, 0, 1, 16, 0x82]), OK),
        ("HEADERS priority short", raw(1, 0x24, 3, &[0, 0, 0, 1]), CONN_SIZE),
        // A self-dependent HEADERS parses: the connection decodes its block, then resets.
        ("HEADERS depends on self", raw(1, 0x24, 3, &[0, 0, 0, 3, 16]), OK),
        ("HEADERS padded", raw(1, 0x0c, 1, &[1, 0x82, 0]), OK),
        ("HEADERS pad too long", raw(1, 0x0c, 1, &[2, 0x82]), CONN_PROTO),
        ("HEADERS pad+priority", raw(1, 0x2c, 1, &[1, 0, 0, 0, 3, 16, 0]), OK),
        ("PRIORITY", raw(2, 0, 3, &p5), OK),
        ("PRIORITY on stream 0", raw(2, 0, 0, &p5), CONN_PROTO),
        ("PRIORITY length 4", raw(2, 0, 3, &p5[..4]), stream_err(3, ErrorCode::FRAME_SIZE_ERROR)),
        ("PRIORITY length 6", raw(2, 0, 3, &[0; 6]), stream_err(3, ErrorCode::FRAME_SIZE_ERROR)),
        ("PRIORITY on itself", raw(2, 0, 3, &self_dep), stream_err(3, ErrorCode::PROTOCOL_ERROR)),
        ("RST_STREAM", raw(3, 0, 1, &[0, 0, 0, 8]), OK),
        ("RST_STREAM on stream 0", raw(3, 0, 0, &[0, 0, 0, 8]), CONN_PROTO),
        ("RST_STREAM length 3", raw(3, 0, 1, &[0, 0, 8]), CONN_SIZE),
        ("RST_STREAM length 5", raw(3, 0, 1, &[0; 5]), CONN_SIZE),
        ("SETTINGS empty", raw(4, 0, 0, &[]), OK),
        ("SETTINGS on stream 1", raw(4, 0, 1, &[]), CONN_PROTO),
        ("SETTINGS ACK with payload", raw(4, 1, 0, &[0, 1, 0, 0, 0, 0]), CONN_SIZE),
        ("SETTINGS length 5", raw(4, 0, 0, &[0; 5]), CONN_SIZE),
        ("SETTINGS unknown id", raw(4, 0, 0, &[0, 0x99, 0xff, 0xff, 0xff, 0xff]), OK),
        ("SETTINGS ENABLE_PUSH 2", raw(4, 0, 0, &[0, 2, 0, 0, 0, 2]), CONN_PROTO),
        ("SETTINGS ENABLE_PUSH 1", raw(4, 0, 0, &[0, 2, 0, 0, 0, 1]), OK),
        ("SETTINGS window 2^31-1", raw(4, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff]), OK),
        ("SETTINGS window 2^31", raw(4, 0, 0, &[0, 4, 0x80, 0, 0, 0]), CONN_FLOW),
        ("SETTINGS frame size 16383", raw(4, 0, 0, &[0, 5, 0, 0, 0x3f, 0xff]), CONN_PROTO),
        ("SETTINGS frame size 16384", raw(4, 0, 0, &[0, 5, 0, 0, 0x40, 0]), OK),
        ("SETTINGS frame size 2^24-1", raw(4, 0, 0, &[0, 5, 0, 0xff, 0xff, 0xff]), OK),
        ("SETTINGS frame size 2^24", raw(4, 0, 0, &[0, 5, 1, 0, 0, 0]), CONN_PROTO),
        ("SETTINGS connect protocol 2", raw(4, 0, 0, &[0, 8, 0, 0, 0, 2]), CONN_PROTO),
        ("PUSH_PROMISE", raw(5, 4, 1, &[0, 0, 0, 2, 0x82]), OK),
        ("PUSH_PROMISE on stream 0", raw(5, 4, 0, &[0, 0, 0, 2]), CONN_PROTO),
        ("PUSH_PROMISE short", raw(5, 4, 1, &[0, 0, 2]), CONN_SIZE),
        ("PUSH_PROMISE pad too long", raw(5, 0xc, 1, &[9, 0, 0, 0, 2]), CONN_PROTO),
        ("PING", raw(6, 0, 0, &[1; 8]), OK),
        ("PING on stream 1", raw(6, 0, 1, &[1; 8]), CONN_PROTO),
        ("PING length 7", raw(6, 0, 0, &[1; 7]), CONN_SIZE),
        ("PING length 9", raw(6, 1, 0, &[1; 9]), CONN_SIZE),
        ("GOAWAY", raw(7, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]), OK),
        ("GOAWAY with debug", raw(7, 0, 0, b"\0\0\0\x01\0\0\0\x0bcalm down"), OK),
        ("GOAWAY on stream 1", raw(7, 0, 1, &[0; 8]), CONN_PROTO),
        ("GOAWAY length 7", raw(7, 0, 0, &[0; 7]), CONN_SIZE),
        ("WINDOW_UPDATE", raw(8, 0, 1, &[0, 0, 0, 1]), OK),
        ("WINDOW_UPDATE conn", raw(8, 0, 0, &[0x7f, 0xff, 0xff, 0xff]), OK),
        ("WINDOW_UPDATE 0 on stream", raw(8, 0, 1, &[0; 4]), stream_err(1, ErrorCode::PROTOCOL_ERROR)),
        ("WINDOW_UPDATE 0 on conn", raw(8, 0, 0, &[0; 4]), CONN_PROTO),
        ("WINDOW_UPDATE reserved bit only", raw(8, 0, 0, &[0x80, 0, 0, 0]), CONN_PROTO),
        ("WINDOW_UPDATE length 3", raw(8, 0, 1, &[0, 0, 1]), CONN_SIZE),
        ("WINDOW_UPDATE length 5", raw(8, 0, 0, &[0, 0, 0, 0, 1]), CONN_SIZE),
        ("CONTINUATION", raw(9, 4, 1, b"\x82"), OK),
        ("CONTINUATION on stream 0", raw(9, 4, 0, b"\x82"), CONN_PROTO),
        ("unknown type", raw(0xfa, 0xff, 0, b"anything"), OK),
        ("unknown type on a stream", raw(0x10, 0, 7, b""), OK),
    ];
    for (name, bytes, want) in cases {
        let got = parse(bytes).map(|_| ());
        assert_eq!(&got, want, "{name}");
    }
}

#[test]
fn parsed_fields() {
    let b = raw(0, 9, 5, &[2, b'h', b'i', 0, 0]);
    let Ok(Frame::Data(d)) = parse(&b) else {
        panic!()
    };
    assert_eq!(
        (d.stream, d.data, d.end_stream, d.flow_len),
        (5, &b"hi"[..], true, 5)
    );

    let b = raw(1, 0x2d, 3, &[1, 0x80, 0, 0, 1, 15, 0x82, 0x84, 0]);
    let Ok(Frame::Headers(h)) = parse(&b) else {
        panic!()
    };
    assert_eq!(h.fragment, [0x82, 0x84]);
    assert!(!h.depends_on_itself());
    assert!(h.end_stream && h.end_headers);
    let spec = h.priority.unwrap();
    assert_eq!(
        (spec.exclusive, spec.dependency, spec.weight),
        (true, 1, 15)
    );
    let b = raw(1, 0x24, 3, &[0, 0, 0, 3, 16]);
    let Ok(Frame::Headers(h)) = parse(&b) else {
        panic!()
    };
    assert!(h.depends_on_itself());

    let b = raw(4, 0, 0, &[0, 3, 0, 0, 0, 100, 0, 4, 0, 1, 0, 0]);
    let Ok(Frame::Settings(s)) = parse(&b) else {
        panic!()
    };
    let got: Vec<_> = s.iter().collect();
    assert_eq!(
        got,
        [
            Setting {
                id: SettingId::MaxConcurrentStreams,
                value: 100
            },
            Setting {
                id: SettingId::InitialWindowSize,
                value: 65536
            },
        ]
    );

    let b = raw(7, 0, 0, b"\x80\0\0\x07\0\0\0\x0bdbg");
    let Ok(Frame::GoAway(g)) = parse(&b) else {
        panic!()
    };
    assert_eq!(
        (g.last_stream, g.code, g.debug),
        (7, ErrorCode::ENHANCE_YOUR_CALM, &b"dbg"[..])
    );
    assert_eq!(
        format!("{:?} {:?}", g.code, ErrorCode(0x42)),
        "ENHANCE_YOUR_CALM ErrorCode(0x42)"
    );
}

fn round_trip(bytes: &[u8]) -> Frame<'_> {
    parse(bytes).expect("own frames parse")
}

fn any_stream() -> impl Strategy<Value = u32> {
    1..=MAX_STREAM_ID
}

proptest! {
    #[test]
    fn data_round_trip(stream in any_stream(), data in proptest::collection::vec(any::<u8>(), 0..300),
                       end in any::<bool>(), pad in proptest::option::of(any::<u8>())) {
        let mut out = Vec::new();
        match pad {
            Some(p) => Data::encode_padded(stream, &data, end, p, &mut out),
            None => Data::encode(stream, &data, end, &mut out),
        }
        let Frame::Data(d) = round_trip(&out) else { panic!() };
        prop_assert_eq!(d.stream, stream);
        prop_assert_eq!(d.data, &data[..]);
        prop_assert_eq!(d.end_stream, end);
        prop_assert_eq!(d.flow_len as usize, out.len() - FRAME_HEAD_LEN);
    }

    #[test]
    fn headers_round_trip(stream in any_stream(), frag in proptest::collection::vec(any::<u8>(), 0..300),
                          end_stream in any::<bool>(), end_headers in any::<bool>(), pad in any::<u8>(),
                          prio in proptest::option::of((any::<bool>(), 0..=MAX_STREAM_ID, any::<u8>()))) {
        let priority = prio
            .map(|(exclusive, dependency, weight)| PrioritySpec { exclusive, dependency, weight })
            .filter(|p| p.dependency != stream);
        let h = Headers { stream, fragment: &frag, end_stream, end_headers, priority };
        let mut out = Vec::new();
        h.encode_with(pad, &mut out);
        prop_assert_eq!(round_trip(&out), Frame::Headers(h));
    }

    #[test]
    fn control_round_trip(stream in any_stream(), code in any::<u32>(), payload in any::<[u8; 8]>(),
                          ack in any::<bool>(), inc in 1..=MAX_STREAM_ID,
                          debug in proptest::collection::vec(any::<u8>(), 0..40),
                          values in proptest::collection::vec((0u16..10, 0..=MAX_STREAM_ID), 0..8)) {
        let mut out = Vec::new();
        RstStream::encode(stream, ErrorCode(code), &mut out);
        prop_assert_eq!(round_trip(&out), Frame::RstStream(RstStream { stream, code: ErrorCode(code) }));
        out.clear();
        Ping::encode(ack, payload, &mut out);
        prop_assert_eq!(round_trip(&out), Frame::Ping(Ping { ack, payload }));
        out.clear();
        WindowUpdate::encode(stream, inc, &mut out);
        prop_assert_eq!(round_trip(&out), Frame::WindowUpdate(WindowUpdate { stream, increment: inc }));
        out.clear();
        GoAway::encode(stream, ErrorCode(code), &debug, &mut out);
        prop_assert_eq!(round_trip(&out), Frame::GoAway(GoAway { last_stream: stream, code: ErrorCode(code), debug: &debug }));
        out.clear();
        let settings: Vec<Setting> = values
            .iter()
            .map(|&(id, v)| Setting { id: SettingId::from_u16(id), value: v })
            .filter(|s| s.check().is_ok())
            .collect();
        Settings::encode(&settings, &mut out);
        let Frame::Settings(s) = round_trip(&out) else { panic!() };
        prop_assert!(!s.ack);
        prop_assert_eq!(s.iter().collect::<Vec<_>>(), settings);
        out.clear();
        Settings::encode_ack(&mut out);
        let Frame::Settings(s) = round_trip(&out) else { panic!() };
        prop_assert!(s.ack && s.is_empty());
    }

    /// Any payload under any header: parsing answers (a frame or an error), never panics.
    /// (The h2_frames fuzz target also re-encodes what parses.)
    #[test]
    fn arbitrary_payloads_never_panic(kind in 0u8..12, flags in any::<u8>(), stream in 0u32..4,
                                      payload in proptest::collection::vec(any::<u8>(), 0..40)) {
        let b = raw(kind, flags, stream, &payload);
        let _ = parse(&b);
    }
}
