//! A real HTTP receiver for webhooks, inside the test: it listens on loopback, records every
//! request it gets and answers each with the next status of its script (then the last one
//! forever). Not a mock of Keel's HTTP client: deliveries cross a real socket to it.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use http::HeaderMap;
use poem::{
    EndpointExt as _, Request, Response, Route, Server, handler,
    listener::{Acceptor as _, Listener as _, TcpListener},
    web::Data,
};
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<(u16, Option<String>)>,
    last: (u16, Option<String>),
}

/// The receiver; dropping it does not stop it (the test process ends soon enough).
#[derive(Clone)]
pub struct Receiver {
    state: Arc<Mutex<State>>,
    pub port: u16,
}

impl Receiver {
    /// Answers every request 200.
    pub async fn start() -> Self {
        Self::scripted(&[200]).await
    }

    /// Answers the requests with `statuses` in turn, then the last of them forever.
    pub async fn scripted(statuses: &[u16]) -> Self {
        Self::scripted_with(
            &statuses
                .iter()
                .map(|status| (*status, None))
                .collect::<Vec<_>>(),
        )
        .await
    }

    /// Like [`Self::scripted`], each status with an optional `Retry-After` value.
    pub async fn scripted_with(script: &[(u16, Option<&str>)]) -> Self {
        let script: VecDeque<(u16, Option<String>)> = script
            .iter()
            .map(|(status, retry)| (*status, retry.map(str::to_owned)))
            .collect();
        let last = script.back().cloned().unwrap_or((200, None));
        let state = Arc::new(Mutex::new(State {
            received: Vec::new(),
            script,
            last,
        }));
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .expect("bind the receiver");
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().map(|addr| addr.port()))
            .expect("the receiver's port");
        let app = Route::new()
            .at("/*path", poem::post(receive))
            .data(state.clone());
        tokio::spawn(async move {
            let _ = Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { state, port }
    }

    /// `http://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("receiver state").received.clone()
    }

    /// Waits until at least `count` requests have arrived, failing after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {count} webhook requests within {timeout:?}, got {}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[handler]
async fn receive(request: &Request, body: Vec<u8>, state: Data<&Arc<Mutex<State>>>) -> Response {
    let (status, retry_after) = {
        let mut state = state.0.lock().expect("receiver state");
        state.received.push(Received {
            path: request.uri().path().to_owned(),
            headers: request.headers().clone(),
            body,
        });
        match state.script.pop_front() {
            Some(next) => next,
            None => state.last.clone(),
        }
    };
    let mut response =
        Response::builder().status(http::StatusCode::from_u16(status).expect("a status code"));
    if let Some(value) = retry_after {
        response = response.header("retry-after", value);
    }
    response.finish()
}
