//! Interop of the HTTP/2 codec with an independent implementation: Python's `h2` (the
//! Debian package python3-h2, installed by scripts/install-test-deps.sh), run by Debian's
//! /usr/bin/python3. The peers exchange bytes through pipes, one hex line per flight, so
//! both codecs run in memory without sockets.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use uring_common::h2::{Config, Connection, Event, Events, HeadersKind, Role};

struct Python {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Python {
    fn start(script: &str) -> Python {
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("/usr/bin/python3 runs (scripts/install-test-deps.sh installs python3-h2)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Python {
            child,
            stdin,
            stdout,
        }
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "python exited early (is python3-h2 installed?)"
        );
        line.trim_end().to_string()
    }

    fn read_bytes(&mut self) -> Vec<u8> {
        let line = self.read_line();
        (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
            .collect()
    }

    fn send_bytes(&mut self, b: &[u8]) {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        writeln!(self.stdin, "{hex}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn finish(mut self) {
        drop(self.stdin);
        assert!(self.child.wait().unwrap().success());
    }
}

const PY_CLIENT: &str = r#"
import sys, json
import h2.connection, h2.config, h2.events
c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
c.initiate_connection()
c.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":authority", "example.com"),
                   (":path", "/echo"), ("content-length", "11"), ("user-agent", "python-h2")])
c.send_data(1, b"hello ", pad_length=5)
c.send_data(1, b"world", end_stream=True)
c.send_headers(3, [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"),
                   (":path", "/missing")], end_stream=True)
c.ping(b"12345678")
print(c.data_to_send().hex(), flush=True)
seen = []
for line in sys.stdin:
    for e in c.receive_data(bytes.fromhex(line.strip())):
        if isinstance(e, h2.events.ResponseReceived):
            seen.append(["response", e.stream_id, dict(e.headers)])
        elif isinstance(e, h2.events.DataReceived):
            seen.append(["data", e.stream_id, e.data.decode()])
            c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        elif isinstance(e, h2.events.TrailersReceived):
            seen.append(["trailers", e.stream_id, dict(e.headers)])
        elif isinstance(e, h2.events.StreamEnded):
            seen.append(["end", e.stream_id])
        elif isinstance(e, h2.events.PingAckReceived):
            seen.append(["pingack", e.ping_data.decode()])
        elif isinstance(e, h2.events.ConnectionTerminated):
            seen.append(["goaway", e.error_code, e.last_stream_id])
    print(c.data_to_send().hex(), flush=True)
    print(json.dumps(seen), flush=True)
    seen = []
"#;

#[test]
fn python_h2_client_against_our_server() {
    let mut py = Python::start(PY_CLIENT);
    let now = Instant::now();
    let mut server = Connection::new(Role::Server, Config::default(), now);
    let mut events = Events::new();
    let flight = py.read_bytes();
    server.recv(&flight, now, &mut events).unwrap();
    let mut requests = Vec::new();
    let mut body = Vec::new();
    for e in events.iter() {
        match *e {
            Event::Headers {
                stream,
                kind,
                pseudo,
                fields,
                end_stream,
                content_length,
            } => {
                assert_eq!(kind, HeadersKind::Request);
                let path = String::from_utf8(events.bytes(pseudo.path.unwrap()).to_vec()).unwrap();
                let ua = events.field(fields, b"user-agent").map(|v| v.to_vec());
                requests.push((stream, path, ua, content_length, end_stream));
            }
            Event::Data { data, .. } => body.extend_from_slice(events.data(data)),
            _ => {}
        }
    }
    assert_eq!(
        requests,
        vec![
            (
                1,
                "/echo".to_string(),
                Some(b"python-h2".to_vec()),
                Some(11),
                false
            ),
            (3, "/missing".to_string(), None, None, true),
        ]
    );
    assert_eq!(body, b"hello world");

    server
        .send_response(
            1,
            200,
            &[(b"server", b"uring"), (b"content-type", b"text/plain")],
            false,
        )
        .unwrap();
    assert_eq!(server.send_data(1, b"echo: hello world", false), Ok(17));
    server.send_trailers(1, &[(b"x-done", b"yes")]).unwrap();
    server
        .send_response(3, 404, &[(b"server", b"uring")], true)
        .unwrap();
    server.goaway(uring_common::h2::ErrorCode::NO_ERROR);
    let mut out = Vec::new();
    server.poll_transmit(&mut out);
    py.send_bytes(&out);
    let answer = py.read_bytes();
    let seen: serde_json::Value = serde_json::from_str(&py.read_line()).unwrap();
    let want = serde_json::json!([
        ["response", 1, {":status": "200", "server": "uring", "content-type": "text/plain"}],
        ["data", 1, "echo: hello world"],
        ["trailers", 1, {"x-done": "yes"}],
        ["end", 1],
        ["response", 3, {":status": "404", "server": "uring"}],
        ["end", 3],
        ["pingack", "12345678"],
        ["goaway", 0, 3],
    ]);
    // Python's order of SETTINGS-related events is its own; compare what matters.
    let seen: Vec<_> = seen.as_array().unwrap().clone();
    for w in want.as_array().unwrap() {
        assert!(seen.contains(w), "missing {w} in {seen:?}");
    }
    // Python's answer (SETTINGS ACK, WINDOW_UPDATEs) is valid input for us.
    server.recv(&answer, now, &mut events).unwrap();
    assert!(server.is_closed());
    py.finish();
}

const PY_SERVER: &str = r#"
import sys, json
import h2.connection, h2.config, h2.events
c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
c.initiate_connection()
body = bytes(i % 251 for i in range(300000))
sent = {}
def pump():
    for sid in list(sent):
        while sent[sid] < len(body):
            n = min(c.local_flow_control_window(sid), c.max_outbound_frame_size, len(body) - sent[sid])
            if n <= 0:
                break
            c.send_data(sid, body[sent[sid]:sent[sid] + n], end_stream=sent[sid] + n == len(body))
            sent[sid] += n
for line in sys.stdin:
    seen = []
    for e in c.receive_data(bytes.fromhex(line.strip())):
        if isinstance(e, h2.events.RequestReceived):
            h = dict(e.headers)
            seen.append(["request", e.stream_id, h[":method"], h[":path"], h.get("x-client")])
            c.send_headers(e.stream_id, [(":status", "200"), ("content-length", str(len(body)))])
            sent[e.stream_id] = 0
        elif isinstance(e, h2.events.StreamEnded):
            seen.append(["end", e.stream_id])
    pump()
    print(c.data_to_send().hex(), flush=True)
    print(json.dumps(seen), flush=True)
"#;

#[test]
fn our_client_against_python_h2_server_with_flow_control() {
    let mut py = Python::start(PY_SERVER);
    let now = Instant::now();
    // Default windows on our side (64 KiB per stream): Python must wait for our updates.
    let config = Config {
        initial_window_size: 65_535,
        connection_window: 65_535,
        ..Config::default()
    };
    let mut client = Connection::new(Role::Client, config, now);
    let mut events = Events::new();
    let a = client
        .open_stream(
            b"GET",
            b"http",
            b"localhost",
            b"/a",
            &[(b"x-client", b"uring")],
            true,
        )
        .unwrap();
    let b = client
        .open_stream(
            b"GET",
            b"http",
            b"localhost",
            b"/b",
            &[(b"x-client", b"uring")],
            true,
        )
        .unwrap();
    let mut received = [0usize; 2];
    let mut done = [false; 2];
    let mut requests = Vec::new();
    for round in 0.. {
        assert!(round < 200, "no progress");
        let mut out = Vec::new();
        client.poll_transmit(&mut out);
        py.send_bytes(&out);
        let answer = py.read_bytes();
        let seen: serde_json::Value = serde_json::from_str(&py.read_line()).unwrap();
        requests.extend(seen.as_array().unwrap().iter().cloned());
        client.recv(&answer, now, &mut events).unwrap();
        for e in events.iter() {
            match *e {
                Event::Headers {
                    stream,
                    kind,
                    pseudo,
                    content_length,
                    ..
                } => {
                    assert_eq!(kind, HeadersKind::Response);
                    assert_eq!((pseudo.status, content_length), (200, Some(300_000)));
                    assert!(stream == a || stream == b);
                }
                Event::Data {
                    stream,
                    data,
                    end_stream,
                    ..
                } => {
                    let i = usize::from(stream == b);
                    let bytes = events.data(data);
                    for (k, &x) in bytes.iter().enumerate() {
                        assert_eq!(x as usize, (received[i] + k) % 251);
                    }
                    received[i] += bytes.len();
                    done[i] |= end_stream;
                }
                Event::Settings | Event::SettingsAcked => {}
                ref other => panic!("unexpected {other:?}"),
            }
        }
        if done == [true, true] {
            break;
        }
    }
    assert_eq!(received, [300_000, 300_000]);
    assert!(requests.contains(&serde_json::json!(["request", 1, "GET", "/a", "uring"])));
    assert!(requests.contains(&serde_json::json!(["request", 3, "GET", "/b", "uring"])));
    assert_eq!(client.active_streams(), 0);
    py.finish();
}
