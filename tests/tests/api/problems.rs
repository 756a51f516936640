//! Every rejection is RFC 9457 problem+json, including the router's and middleware's own.

use std::time::{Duration, Instant};

use keel_tests::{ReadinessBlocker, assert_problem, spawn_app, spawn_app_with};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let app = spawn_app().await;
    let body = assert_problem(app.get("/api/v1/does-not-exist").await, 404).await;
    assert!(body["request_id"].is_string());
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/health/ready"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["allow"], "GET");
    assert_problem(response, 405).await;
}

/// The client declares 2048 bytes and sends none of them: the 413 can only come from the
/// `Content-Length` header, since a server that read the body first would wait forever.
#[tokio::test]
async fn declared_oversized_bodies_are_413_before_being_read() {
    let app = spawn_app_with(&[("APP__HTTP__BODY_LIMIT_BYTES", "1024")]).await;
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/auth/register HTTP/1.1\r\nHost: {address}\r\n\
         Content-Type: application/json\r\nContent-Length: 2048\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    let response = tokio::time::timeout(Duration::from_secs(10), read_one_response(&mut stream))
        .await
        .expect("no answer without the body: the server waited to read it");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 413"), "{response}");
    assert!(head.contains("application/problem+json"), "{response}");
    let body: serde_json::Value = serde_json::from_str(body).expect("a JSON problem");
    assert!(
        body["detail"].as_str().unwrap_or_default().contains("1024"),
        "{body}"
    );
}

/// Reads one HTTP/1.1 response with a `Content-Length`, leaving the connection open.
async fn read_one_response(stream: &mut tokio::net::TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .expect("a response with Content-Length");
            if body.len() >= length {
                return text;
            }
        }
        let read = stream.read(&mut buffer).await.expect("read");
        assert!(read > 0, "closed mid-response: {text}");
        received.extend_from_slice(&buffer[..read]);
    }
}

#[tokio::test]
async fn chunked_bodies_are_cut_off_at_the_limit() {
    let app = spawn_app_with(&[("APP__HTTP__BODY_LIMIT_BYTES", "1024")]).await;
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let chunk = "x".repeat(800);
    let request = format!(
        "POST /health/live HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains("application/problem+json"), "{response}");
}

/// HTTP/2 cleartext on the same port: a body streamed in DATA frames with no content-length
/// is cut off at the limit too, not read whole.
#[tokio::test]
async fn h2c_bodies_without_a_length_are_cut_off_at_the_limit() {
    let app = spawn_app_with(&[("APP__HTTP__BODY_LIMIT_BYTES", "1024")]).await;
    let address = app.address.trim_start_matches("http://");
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2c handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::post(format!("http://{address}/api/v1/auth/register"))
        .header("content-type", "application/json")
        .body(())
        .expect("request");
    let (response, mut body) = client.send_request(request, false).expect("send");
    // 8 MB in 64 KiB frames; the server may reset the stream long before the end.
    let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
    for _ in 0..128 {
        body.reserve_capacity(chunk.len());
        if body.send_data(chunk.clone(), false).is_err() {
            break;
        }
    }
    let _ = body.send_data(bytes::Bytes::new(), true);
    let response = response.await.expect("response");
    assert_eq!(response.status(), 413);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
}

#[tokio::test]
async fn slow_requests_time_out_with_503() {
    let app = spawn_app_with(&[("APP__HTTP__REQUEST_TIMEOUT", "300ms")]).await;
    let blocker = ReadinessBlocker::hold(&app.database_url).await;

    let started = Instant::now();
    let body = assert_problem(app.get("/health/ready").await, 503).await;
    assert_eq!(body["type"], "urn:keel:problem:timeout");
    assert!(started.elapsed() < Duration::from_secs(10));

    blocker.release().await;
    // Recovered: the same request succeeds again. On a loaded machine one check can itself
    // exceed the 300 ms budget, so a few tries are allowed; a stuck service still fails.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let status = app.get("/health/ready").await.status();
        statuses.push(status.as_u16());
        if status == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("never ready again after the lock was released: {statuses:?}");
}
