//! Connection limits over raw TCP: a slow or idle client cannot hold a connection, and a cap on
//! open connections queues the excess instead of exhausting the process.

use std::time::{Duration, Instant};

use keel_tests::{TestApp, spawn_app_with};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

const HEAD: &[u8] = b"GET /health/live HTTP/1.1\r\nhost: localhost\r\n\r\n";

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.address.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("connects")
}

/// Reads until the server closes the connection (or `limit` passes) and returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(received),
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

/// Reads one complete response (the probe's body is small and sent at once) from a kept-alive
/// connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
        .await
        .expect("a response within 10s")
        .expect("reads");
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

#[tokio::test]
async fn a_request_head_trickled_byte_by_byte_is_cut_off_at_the_header_read_timeout() {
    let app = spawn_app_with(&[("APP__SERVER__HEADER_READ_TIMEOUT", "1s")]).await;
    let mut stream = connect(&app).await;
    let started = Instant::now();

    // One byte every 200 ms: never silent long enough for an idle timeout, never a whole head.
    let trickle = async {
        for byte in b"GET /health/live HTTP/1.1\r\nx-slow: "
            .iter()
            .chain([b'a'; 200].iter())
        {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), trickle)
        .await
        .expect("the server stops the trickle well before 10s");
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server closed the connection");

    assert!(answer.is_empty(), "no response to a head that never ended");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}, expected about the 1s header-read timeout"
    );
    // The service itself is unaffected.
    assert_eq!(app.get("/health/live").await.status(), 200);
}

#[tokio::test]
async fn a_half_sent_http2_preface_is_cut_off_at_the_header_read_timeout() {
    let app = spawn_app_with(&[("APP__SERVER__HEADER_READ_TIMEOUT", "1s")]).await;
    let mut stream = connect(&app).await;
    // Protocol detection waits for the whole 24-byte preface; half of it must not hold it open.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n")
        .await
        .expect("writes");

    let started = Instant::now();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the server closed the connection");
    assert!(answer.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout_but_not_while_in_use() {
    let app = spawn_app_with(&[
        ("APP__SERVER__IDLE_TIMEOUT", "1s"),
        ("APP__SERVER__HEADER_READ_TIMEOUT", "5s"),
    ])
    .await;
    let mut stream = connect(&app).await;

    // Requests every 400 ms for 2.4 s: in use the whole time, so never idle-closed.
    for _ in 0..6 {
        stream
            .write_all(HEAD)
            .await
            .expect("the connection is still open");
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    let idle_from = Instant::now();
    let rest = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the idle connection was closed");
    assert!(rest.is_empty());
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(500) && idle < Duration::from_secs(3),
        "closed after {idle:?} idle, expected about the 1s idle timeout"
    );
}

#[tokio::test]
async fn beyond_max_connections_new_clients_wait_until_a_connection_closes() {
    let app = spawn_app_with(&[("APP__SERVER__MAX_CONNECTIONS", "2")]).await;
    let first = connect(&app).await;
    let mut second = connect(&app).await;
    // Both are served, so both hold a slot (accepting is what takes one).
    second.write_all(HEAD).await.expect("writes");
    assert!(read_response(&mut second).await.starts_with("HTTP/1.1 200"));

    // The kernel completes the handshake from its backlog, but the service does not accept.
    let mut third = connect(&app).await;
    third.write_all(HEAD).await.expect("writes");
    let mut buffer = [0u8; 1024];
    let waited = tokio::time::timeout(Duration::from_millis(1500), third.read(&mut buffer)).await;
    assert!(
        waited.is_err(),
        "a third connection was served while two were open"
    );

    drop(first);
    let response = read_response(&mut third).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}
