//! HTTP/2 frames: a byte stream cut into frames never panics the parser, and every frame
//! that parses, serialized again by our encoder, parses back to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use uring_common::h2::frame::{
    Continuation, Data, Frame, FrameHead, GoAway, Ping, RstStream, Setting, Settings, WindowUpdate,
    FRAME_HEAD_LEN,
};

fn reencode(frame: &Frame<'_>, out: &mut Vec<u8>) -> bool {
    match *frame {
        Frame::Data(d) => Data::encode(d.stream, d.data, d.end_stream, out),
        Frame::Headers(h) => h.encode_with(0, out),
        Frame::Priority(p) => p.encode(out),
        Frame::RstStream(r) => RstStream::encode(r.stream, r.code, out),
        Frame::Settings(s) if s.ack => Settings::encode_ack(out),
        Frame::Settings(s) => {
            let list: Vec<Setting> = s.iter().collect();
            Settings::encode(&list, out)
        }
        Frame::PushPromise(p) => p.encode(out),
        Frame::Ping(p) => Ping::encode(p.ack, p.payload, out),
        Frame::GoAway(g) => GoAway::encode(g.last_stream, g.code, g.debug, out),
        Frame::WindowUpdate(w) => WindowUpdate::encode(w.stream, w.increment, out),
        Frame::Continuation(c) => Continuation::encode(c.stream, c.fragment, c.end_headers, out),
        Frame::Unknown { .. } => return false,
    }
    true
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut out = Vec::new();
    while let Some(head) = FrameHead::parse(rest) {
        let Some(payload) = rest.get(FRAME_HEAD_LEN..FRAME_HEAD_LEN + head.len as usize) else {
            return;
        };
        rest = &rest[FRAME_HEAD_LEN + head.len as usize..];
        let Ok(frame) = Frame::parse(head, payload) else {
            continue;
        };
        out.clear();
        if !reencode(&frame, &mut out) {
            continue;
        }
        let again = FrameHead::parse(&out).expect("a header");
        let back = Frame::parse(again, &out[FRAME_HEAD_LEN..]).expect("our own frame parses");
        match (frame, back) {
            // Padding is dropped on re-encoding; flow_len counts it.
            (Frame::Data(a), Frame::Data(b)) => {
                assert_eq!(
                    (a.stream, a.data, a.end_stream),
                    (b.stream, b.data, b.end_stream)
                )
            }
            (a, b) => assert_eq!(a, b),
        }
    }
});
