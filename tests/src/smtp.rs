//! An SMTP server inside the test process that keeps every message it is given, so tests read
//! the email the app really sent: lettre speaks SMTP to it over a socket, as it would to a relay.
//!
//! It speaks just enough of RFC 5321 for a client without extensions: EHLO/HELO, MAIL FROM,
//! RCPT TO, DATA (with the dot-unstuffing a client's dot-stuffing needs), RSET, NOOP, QUIT. It
//! advertises no extension (no STARTTLS, AUTH or PIPELINING), so the app must be configured
//! with `email.smtp_tls = "none"` and no credentials, as `test.toml` does.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use mail_parser::{MessageParser, MimeHeaders as _, PartType};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader},
    net::{TcpListener, TcpStream},
    sync::Notify,
    task::JoinHandle,
};

/// A message as the sink received it: the envelope and the raw RFC 5322 text.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub to: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, CRLF line endings.
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    fn parsed(&self) -> mail_parser::Message<'_> {
        MessageParser::default()
            .parse(&self.raw)
            .unwrap_or_else(|| panic!("not a MIME message: {}", String::from_utf8_lossy(&self.raw)))
    }

    /// The decoded `Subject` header.
    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    /// The decoded `From` header's first address.
    pub fn from_header(&self) -> String {
        self.parsed()
            .from()
            .and_then(|from| from.first())
            .and_then(|address| address.address())
            .unwrap_or_default()
            .to_owned()
    }

    /// The decoded body of the message's `text/plain` part. Panics when there is none: a
    /// parser's conversion of the HTML part would hide a missing one.
    pub fn text(&self) -> String {
        self.part("plain")
    }

    /// The decoded body of the message's `text/html` part. Panics when there is none.
    pub fn html(&self) -> String {
        self.part("html")
    }

    fn part(&self, subtype: &str) -> String {
        let message = self.parsed();
        message
            .parts
            .iter()
            .find(|part| {
                matches!(part.body, PartType::Text(_) | PartType::Html(_))
                    && part.content_type().is_some_and(|content_type| {
                        content_type.ctype().eq_ignore_ascii_case("text")
                            && content_type
                                .subtype()
                                .is_some_and(|s| s.eq_ignore_ascii_case(subtype))
                    })
            })
            .and_then(|part| part.text_contents())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                panic!(
                    "no text/{subtype} part in: {}",
                    String::from_utf8_lossy(&self.raw)
                )
            })
    }
}

/// The SMTP server: listening on `127.0.0.1:<port>` until dropped.
pub struct SmtpSink {
    port: u16,
    inbox: Arc<Inbox>,
    accepting: JoinHandle<()>,
}

#[derive(Default)]
struct Inbox {
    messages: Mutex<Vec<ReceivedMail>>,
    arrived: Notify,
    /// Messages still to be refused with a transient 451, as a relay that is busy would.
    refusals: AtomicUsize,
}

impl Inbox {
    fn snapshot(&self) -> Vec<ReceivedMail> {
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl SmtpSink {
    /// Binds a free port and starts accepting connections, each served by a task of its own.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP sink");
        let port = listener.local_addr().expect("the sink's address").port();
        let inbox = Arc::new(Inbox::default());
        let accepting = tokio::spawn({
            let inbox = inbox.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let inbox = inbox.clone();
                    tokio::spawn(async move {
                        // A client that hangs up mid-session has sent nothing worth keeping.
                        let _ = serve(stream, &inbox).await;
                    });
                }
            }
        });
        Self {
            port,
            inbox,
            accepting,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answers the next `count` messages `451 4.3.0 Try again later` (a transient refusal,
    /// which a client retries) instead of taking them.
    pub fn refuse_next(&self, count: usize) {
        self.inbox.refusals.store(count, Ordering::SeqCst);
    }

    /// The settings that point the app at this sink; add them to `spawn_app_with`.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("APP__EMAIL__ENABLED", "true".to_owned()),
            ("APP__EMAIL__SMTP_HOST", "127.0.0.1".to_owned()),
            ("APP__EMAIL__SMTP_PORT", self.port.to_string()),
            ("APP__EMAIL__SMTP_TLS", "none".to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
    }

    /// Every message received so far, in the order they arrived.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.inbox.snapshot()
    }

    /// Waits until at least `count` messages have arrived and returns all of them; panics
    /// after `timeout` saying how many did.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so a message arriving in between still wakes us.
            let arrived = self.inbox.arrived.notified();
            let messages = self.inbox.snapshot();
            if messages.len() >= count {
                return messages;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "the SMTP sink received {} of {count} messages within {timeout:?}: {:?}",
                    messages.len(),
                    messages
                        .iter()
                        .map(ReceivedMail::subject)
                        .collect::<Vec<_>>()
                );
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// One SMTP session.
async fn serve(stream: TcpStream, inbox: &Inbox) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut reply = async |text: &str| writer.write_all(format!("{text}\r\n").as_bytes()).await;
    reply("220 keel-test-sink ESMTP ready").await?;
    let (mut from, mut to): (Option<String>, Vec<String>) = (None, Vec::new());
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line);
        let command = command.trim_end_matches(['\r', '\n']);
        let verb = command
            .split_once([' ', ':'])
            .map_or(command, |(verb, _)| verb)
            .to_ascii_uppercase();
        match verb.as_str() {
            // No extensions: one line, so lettre sends plain MAIL FROM / RCPT TO.
            "EHLO" | "HELO" => reply("250 keel-test-sink").await?,
            "MAIL" => match address_after(command, "MAIL FROM:") {
                Some(address) => {
                    from = Some(address);
                    to.clear();
                    reply("250 OK").await?;
                }
                None => reply("501 Syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" if from.is_none() => reply("503 MAIL first").await?,
            "RCPT" => match address_after(command, "RCPT TO:") {
                Some(address) => {
                    to.push(address);
                    reply("250 OK").await?;
                }
                None => reply("501 Syntax: RCPT TO:<address>").await?,
            },
            "DATA" if to.is_empty() => reply("503 RCPT first").await?,
            "DATA"
                if inbox
                    .refusals
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok() =>
            {
                reply("451 4.3.0 Try again later").await?;
            }
            "DATA" => {
                reply("354 End data with <CR><LF>.<CR><LF>").await?;
                let raw = read_data(&mut reader).await?;
                let mail = ReceivedMail {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    raw,
                };
                inbox
                    .messages
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(mail);
                inbox.arrived.notify_waiters();
                reply("250 OK: queued").await?;
            }
            "RSET" => {
                (from, to) = (None, Vec::new());
                reply("250 OK").await?;
            }
            "NOOP" => reply("250 OK").await?,
            "QUIT" => {
                reply("221 Bye").await?;
                return Ok(());
            }
            _ => reply("502 Command not implemented").await?,
        }
    }
}

/// The `<address>` of `MAIL FROM:<address> [parameters]`, case-insensitive in the prefix.
fn address_after(command: &str, prefix: &str) -> Option<String> {
    let head = command.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = command[prefix.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_owned())
}

/// The message after `DATA`, up to the line holding only `.`. A line the client began with a
/// dot had one more dot added (RFC 5321 §4.5.2); it is removed here.
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(raw);
        }
        let unstuffed = line.strip_prefix(b".").unwrap_or(&line);
        raw.extend_from_slice(unstuffed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_addresses_are_read_without_brackets_or_parameters() {
        assert_eq!(
            address_after("MAIL FROM:<a@b.c> BODY=8BITMIME", "MAIL FROM:").as_deref(),
            Some("a@b.c")
        );
        assert_eq!(
            address_after("rcpt to: <x@y.z>", "RCPT TO:").as_deref(),
            Some("x@y.z")
        );
        assert_eq!(address_after("MAIL FROM:a@b.c", "MAIL FROM:"), None);
        assert_eq!(address_after("MAIL", "MAIL FROM:"), None);
    }
}
