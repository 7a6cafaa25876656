//! A scriptable HTTP/1.1 server on 127.0.0.1 for tests of the publishers (and of commands that
//! call them): it records every request and answers with whatever the test's handler returns.
//!
//! Not part of buildopt's interface; public only so the integration tests can use the same server
//! as the unit tests. It handles what the publishers send (`Content-Length` bodies, one request
//! per connection, `Connection: close` answers) and nothing more.
//!
//! ```ignore
//! let server = FakeServer::start(|req: &Recorded| match req.path() {
//!     "/repos/o/r/issues/7/comments" => Reply::json(200, serde_json::json!([])),
//!     _ => Reply::status(404),
//! });
//! let url = server.url(); // http://127.0.0.1:PORT
//! let requests = server.requests();
//! ```

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The request target: path and query, e.g. `/repos/o/r/issues/7/comments?per_page=100`.
    pub target: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The value of query parameter `name`.
    pub fn query(&self, name: &str) -> Option<&str> {
        let query = self.target.split_once('?')?.1;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }

    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// `"METHOD /path"`, handy in assertions.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path())
    }
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (to test timeouts).
    pub delay: Option<Duration>,
}

impl Reply {
    /// An empty answer with `status`.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: None,
        }
    }

    /// A JSON answer.
    pub fn json(status: u16, value: serde_json::Value) -> Self {
        Self {
            body: value.to_string().into_bytes(),
            ..Self::status(status)
        }
        .header("content-type", "application/json")
    }

    /// A plain-text answer (Slack's webhook answers `ok`).
    pub fn text(status: u16, text: &str) -> Self {
        Self {
            body: text.as_bytes().to_vec(),
            ..Self::status(status)
        }
        .header("content-type", "text/plain")
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Answers only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// A running server; stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl FakeServer {
    /// Starts a server on an ephemeral port of 127.0.0.1 that answers every request with
    /// `handler`.
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let accept = {
            let (requests, stop) = (requests.clone(), stop.clone());
            std::thread::spawn(move || accept_loop(&listener, &requests, &stop, &handler))
        };
        Self {
            addr,
            requests,
            stop,
            accept: Some(accept),
        }
    }

    /// Starts a server that answers requests with `replies` in order, repeating the last one.
    pub fn scripted(replies: Vec<Reply>) -> Self {
        let queue = Mutex::new(VecDeque::from(replies));
        Self::start(move |_| {
            let mut queue = queue.lock().expect("script");
            match queue.len() {
                0 => Reply::status(500),
                1 => queue[0].clone(),
                _ => queue.pop_front().expect("non-empty"),
            }
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("requests").clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    requests: &Arc<Mutex<Vec<Recorded>>>,
    stop: &AtomicBool,
    handler: &Arc<Handler>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let (requests, handler) = (requests.clone(), handler.clone());
        std::thread::spawn(move || {
            let _ = serve(stream, &requests, handler.as_ref());
        });
    }
}

/// Reads one request, records it, writes the handler's reply and closes the connection.
fn serve(
    stream: TcpStream,
    requests: &Mutex<Vec<Recorded>>,
    handler: &Handler,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let Some(request) = read_request(&mut reader)? else {
        return Ok(());
    };
    requests.lock().expect("requests").push(request.clone());
    let reply = handler(&request);
    if let Some(delay) = reply.delay {
        std::thread::sleep(delay);
    }
    write_reply(stream, &reply)
}

fn read_request(reader: &mut impl BufRead) -> std::io::Result<Option<Recorded>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Some(Recorded {
        method,
        target,
        headers,
        body,
    }))
}

fn write_reply(mut stream: TcpStream, reply: &Reply) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        reply.body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(&reply.body)?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(url: &str) -> (u16, String) {
        let response = reqwest::blocking::get(url).expect("get");
        (response.status().as_u16(), response.text().expect("text"))
    }

    #[test]
    fn records_requests_and_plays_the_script_in_order() {
        let server = FakeServer::scripted(vec![Reply::text(500, "a"), Reply::text(200, "b")]);
        assert_eq!(get(&format!("{}/x?y=1", server.url())), (500, "a".into()));
        assert_eq!(get(&format!("{}/x", server.url())), (200, "b".into()));
        assert_eq!(get(&format!("{}/x", server.url())), (200, "b".into()));
        let requests = server.requests();
        assert_eq!(requests.len(), 3);
        assert_eq!(
            (requests[0].line(), requests[0].query("y")),
            ("GET /x".into(), Some("1"))
        );
    }
}
