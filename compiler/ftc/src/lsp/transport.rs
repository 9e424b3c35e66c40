//! The server's stdio transport: JSON-RPC messages framed by `Content-Length` headers, read and
//! written on two threads and handed to the server through an in-memory `lsp_server`
//! connection. Unlike `lsp_server`'s own stdio transport it refuses a message larger than
//! [`MAX_MESSAGE`] or a header line longer than [`MAX_HEADER`] before allocating for it, so no
//! input on stdin can make the server abort on allocation.

use lsp_server::{Connection, Message};
use std::io::{BufRead, Read, Write};
use std::thread::JoinHandle;

/// The largest message accepted (a source file may be 8 MiB; JSON escaping can double it).
pub const MAX_MESSAGE: usize = 64 << 20;

/// The longest header line accepted.
pub const MAX_HEADER: u64 = 8 << 10;

/// The transport's threads: the reader reports why it stopped reading.
pub struct Threads {
    reader: JoinHandle<Result<(), String>>,
    writer: JoinHandle<()>,
}

impl Threads {
    /// Waits for both threads: the reader's error, if it stopped on bad input.
    pub fn join(self) -> Result<(), String> {
        let read = self
            .reader
            .join()
            .unwrap_or_else(|_| Err("the reader thread failed".into()));
        let _ = self.writer.join();
        read
    }
}

/// The server's end of a connection whose other end is stdin/stdout.
pub fn stdio() -> (Connection, Threads) {
    let (server, client) = Connection::memory();
    let Connection { sender, receiver } = client;
    let reader = std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut input = stdin.lock();
        while let Some(text) = read_frame(&mut input)? {
            let msg: Message =
                serde_json::from_str(&text).map_err(|e| format!("malformed message: {e}"))?;
            let exit = matches!(&msg, Message::Notification(n) if n.method == "exit");
            if sender.send(msg).is_err() || exit {
                break;
            }
        }
        Ok(())
    });
    let writer = std::thread::spawn(move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for msg in receiver {
            let Ok(text) = serde_json::to_string(&msg) else {
                continue;
            };
            let framed = write!(out, "Content-Length: {}\r\n\r\n{text}", text.len());
            if framed.and_then(|()| out.flush()).is_err() {
                break;
            }
        }
    });
    (server, Threads { reader, writer })
}

/// The next message's text, `None` at the end of the input.
fn read_frame(input: &mut impl BufRead) -> Result<Option<String>, String> {
    let mut length = None;
    loop {
        let mut line = Vec::new();
        let n = input
            .by_ref()
            .take(MAX_HEADER)
            .read_until(b'\n', &mut line)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(None);
        }
        if !line.ends_with(b"\r\n") {
            return Err("malformed header (too long, or not ended by CRLF)".into());
        }
        let line = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed header {line:?}"))?;
        if name.trim().eq_ignore_ascii_case("Content-Length") {
            let n: usize = value
                .trim()
                .parse()
                .map_err(|_| format!("malformed Content-Length {value:?}"))?;
            if n > MAX_MESSAGE {
                return Err(format!(
                    "a message of {n} bytes (at most {MAX_MESSAGE} are accepted)"
                ));
            }
            length = Some(n);
        }
    }
    let length = length.ok_or("a message without Content-Length")?;
    let mut body = vec![0; length];
    input.read_exact(&mut body).map_err(|e| e.to_string())?;
    String::from_utf8(body)
        .map(Some)
        .map_err(|_| "a message that is not UTF-8".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_and_oversized_or_malformed_ones_refused() {
        let mut ok = &b"Content-Length: 2\r\n\r\n{}Content-Length: 3\r\n\r\n[1]"[..];
        assert_eq!(read_frame(&mut ok).unwrap().as_deref(), Some("{}"));
        assert_eq!(read_frame(&mut ok).unwrap().as_deref(), Some("[1]"));
        assert_eq!(read_frame(&mut ok).unwrap(), None);
        let mut huge = &b"Content-Length: 99999999999999999\r\n\r\n"[..];
        assert!(read_frame(&mut huge).unwrap_err().contains("at most"));
        let long = format!("X-{}: 1\r\n", "a".repeat(20_000));
        assert!(read_frame(&mut long.as_bytes()).is_err());
        let mut none = &b"Content-Type: x\r\n\r\n"[..];
        assert!(read_frame(&mut none).is_err());
        let mut bad = &b"Content-Length: -1\r\n\r\n"[..];
        assert!(read_frame(&mut bad).is_err());
    }
}
