//! A tiny scripted HTTP server on 127.0.0.1 for error-mapping tests: no Python needed.

#![allow(dead_code)] // each test binary uses a different part

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One canned answer: status line, extra headers and body.
#[derive(Clone)]
pub struct Reply {
    pub status: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: &'static str, body: &str) -> Reply {
        Reply { status, headers: Vec::new(), body: body.into() }
    }

    #[must_use]
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// A server answering heartbeats with 200 and every other request with `reply` (or never, when
/// `reply` is `None`: a hung server). Records every request head it saw.
pub struct Canned {
    pub url: String,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Canned {
    pub fn start(reply: Option<Reply>) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (reply, log) = (reply.clone(), Arc::clone(&log));
                std::thread::spawn(move || serve(stream, reply.as_ref(), &log));
            }
        });
        Canned { url, seen }
    }

    /// Every request head received so far, joined.
    pub fn requests(&self) -> String {
        self.seen.lock().expect("lock").join("\n---\n")
    }
}

fn serve(stream: TcpStream, reply: Option<&Reply>, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut out = stream;
    loop {
        let Some((head, len)) = read_head(&mut reader) else { return };
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().expect("lock").push(head.clone());
        let reply = if head.starts_with("GET /api/v2/heartbeat") {
            Reply::new("200 OK", r#"{"nanosecond heartbeat": 42}"#)
        } else if let Some(r) = reply {
            r.clone()
        } else {
            std::thread::sleep(Duration::from_secs(30));
            return;
        };
        let mut text = format!(
            "HTTP/1.1 {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            let _ = write!(text, "{k}: {v}\r\n");
        }
        text.push_str("\r\n");
        text.push_str(&reply.body);
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

fn read_head(reader: &mut BufReader<TcpStream>) -> Option<(String, usize)> {
    let mut head = String::new();
    let mut len = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            return Some((head, len));
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        head.push_str(&line);
    }
}
