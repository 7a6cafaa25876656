//! The one HTTP client of every publisher: timeouts, the retry loop of [`super::retry`], and
//! errors that never hold a secret.
//!
//! Errors name the call by what it does ("list the comments of pull request #7"), never by its URL
//! (a Slack webhook URL is a secret), drop the URL reqwest attaches, and pass through the
//! [`Redactor`] of the client's secrets. HTTPS uses rustls with the system's roots; plain HTTP
//! works too, for test servers and GitHub Enterprise behind a proxy.
//!
//! The client is blocking: call it from synchronous code, not inside a tokio runtime.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::blocking::{Client, Response};
use reqwest::header::HeaderMap;

use super::retry::{Decision, Outcome, RetryPolicy};
use super::secret::{Redactor, Secret};

/// Sleeps between attempts; tests pass one that records instead of sleeping.
pub type Sleeper = Arc<dyn Fn(Duration) + Send + Sync>;

/// Timeouts and retries.
#[derive(Clone)]
pub struct HttpConfig {
    /// The whole call, answer body included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retry: RetryPolicy,
    pub sleep: Sleeper,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            sleep: Arc::new(std::thread::sleep),
        }
    }
}

/// A call that failed, described without secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The server answered with an error status (after any retries).
    #[error("{what}: HTTP {status}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    /// No answer: connection refused, timeout, TLS failure.
    #[error("{what}: {message}")]
    Transport { what: String, message: String },
    /// Rate limited for longer than buildopt waits.
    #[error("{what}: rate limited for {wait_secs} s, longer than the {max_secs} s buildopt waits")]
    RateLimited {
        what: String,
        wait_secs: u64,
        max_secs: u64,
    },
    /// The answer was not what the API documents.
    #[error("{what}: unexpected answer: {message}")]
    Decode { what: String, message: String },
    /// The client could not be built (no TLS roots).
    #[error("could not set up HTTPS: {0}")]
    Setup(String),
}

impl HttpError {
    /// The HTTP status of a [`HttpError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One call to make.
#[derive(Debug, Clone)]
pub struct Call {
    method: Method,
    url: String,
    /// What the call does, for errors ("update comment 12"); never the URL.
    what: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    /// Safe to repeat after the server may have acted on it.
    idempotent: bool,
}

impl Call {
    pub fn new(method: Method, url: impl Into<String>, what: impl Into<String>) -> Self {
        let idempotent = method != Method::POST;
        Self {
            method,
            url: url.into(),
            what: what.into(),
            headers: Vec::new(),
            body: None,
            idempotent,
        }
    }

    pub fn get(url: impl Into<String>, what: impl Into<String>) -> Self {
        Self::new(Method::GET, url, what)
    }

    pub fn post(url: impl Into<String>, what: impl Into<String>) -> Self {
        Self::new(Method::POST, url, what)
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// A JSON body.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.header("content-type", "application/json")
    }

    /// Marks a POST as safe to repeat (a SARIF upload replaces the same analysis).
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// The same call to another URL (the next page of a listing).
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    pub fn what(&self) -> &str {
        &self.what
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A successful (2xx) answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    /// The value of header `name`, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json(&self, what: &str) -> Result<serde_json::Value, HttpError> {
        serde_json::from_slice(&self.body).map_err(|err| HttpError::Decode {
            what: what.to_string(),
            message: err.to_string(),
        })
    }

    fn outcome(&self) -> Outcome<'_> {
        Outcome::Answer {
            status: self.status,
            retry_after: self.header("retry-after"),
            ratelimit_remaining: self.header("x-ratelimit-remaining"),
            ratelimit_reset: self.header("x-ratelimit-reset"),
            body: std::str::from_utf8(&self.body).unwrap_or_default(),
        }
    }
}

/// The client: one per run, shared by every publisher.
#[derive(Debug)]
pub struct HttpClient {
    client: Client,
    config: HttpConfig,
    redactor: Redactor,
}

impl HttpClient {
    /// A client whose errors redact `secrets`.
    pub fn new(config: HttpConfig, secrets: &[&Secret]) -> Result<Self, HttpError> {
        let client = Client::builder()
            .user_agent(concat!("buildopt/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(same_origin_redirects())
            .build()
            .map_err(|err| HttpError::Setup(err.without_url().to_string()))?;
        Ok(Self {
            client,
            config,
            redactor: Redactor::new(secrets.iter().copied()),
        })
    }

    /// The client's redactor, for callers that show text derived from answers.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Sleeps as configured (pollers wait between polls with it, so tests stay fast).
    pub fn sleep(&self, duration: Duration) {
        (self.config.sleep)(duration);
    }

    /// Makes the call, retrying as [`RetryPolicy`] says; a non-2xx final answer is an error.
    pub fn send(&self, call: &Call) -> Result<Answer, HttpError> {
        let mut attempt = 1;
        loop {
            let result = self.attempt(call);
            let outcome = match &result {
                Ok(answer) => answer.outcome(),
                Err(err) if err.is_connect() => Outcome::ConnectFailed,
                Err(_) => Outcome::Interrupted,
            };
            let decision = self.config.retry.decide(
                attempt,
                outcome,
                call.idempotent,
                SystemTime::now(),
                random_fraction(),
            );
            match decision {
                Decision::Stop => return self.finish(call, result),
                Decision::RetryAfter(wait) => self.sleep(wait),
                Decision::WaitTooLong(wait) => {
                    return Err(HttpError::RateLimited {
                        what: call.what.clone(),
                        wait_secs: wait.as_secs(),
                        max_secs: self.config.retry.max_wait.as_secs(),
                    });
                }
            }
            attempt += 1;
        }
    }

    fn attempt(&self, call: &Call) -> Result<Answer, reqwest::Error> {
        let mut request = self.client.request(call.method.clone(), &call.url);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let response: Response = request.send()?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes()?.to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// The final result, with every message redacted.
    fn finish(
        &self,
        call: &Call,
        result: Result<Answer, reqwest::Error>,
    ) -> Result<Answer, HttpError> {
        let what = self.redactor.redact(&call.what);
        match result {
            Ok(answer) if answer.status < 300 => Ok(answer),
            Ok(answer) if answer.status < 400 => Err(HttpError::Status {
                what,
                status: answer.status,
                message: "redirected to another server; not followed, it would get the token"
                    .into(),
            }),
            Ok(answer) => Err(HttpError::Status {
                what,
                status: answer.status,
                message: self.redactor.redact(&error_message(&answer.body)),
            }),
            Err(err) => Err(HttpError::Transport {
                what,
                message: self.redactor.redact(&describe(err)),
            }),
        }
    }
}

/// Follows redirects on the same scheme, host and port only (GitHub answers 301 for a renamed
/// repository). reqwest drops `Authorization` on a redirect to another host, but not GitLab's
/// `PRIVATE-TOKEN` or `JOB-TOKEN`, and it follows `https` to `http`: a redirect elsewhere is
/// handed back unfollowed, and [`HttpClient::send`] makes it an error.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let origin = |url: &reqwest::Url| {
            (
                url.scheme().to_string(),
                url.host_str().map(str::to_string),
                url.port_or_known_default(),
            )
        };
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| origin(first) == origin(attempt.url()));
        if !same {
            attempt.stop()
        } else if attempt.previous().len() > 5 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// reqwest's error without its URL, with the causes that say what went wrong.
fn describe(err: reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut message = kind.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The API's own explanation: `message` (GitHub, GitLab) or `error`, else the text, shortened.
fn error_message(body: &[u8]) -> String {
    const MAX_CHARS: usize = 300;
    let text = String::from_utf8_lossy(body);
    let message = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(json) => match json.get("message").or_else(|| json.get("error")) {
            Some(serde_json::Value::String(message)) => message.clone(),
            Some(other) => other.to_string(),
            None => json.to_string(),
        },
        Err(_) => text.trim().to_string(),
    };
    if message.is_empty() {
        return "(no message)".into();
    }
    match message.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &message[..cut]),
        None => message,
    }
}

fn random_fraction() -> f64 {
    let bits = getrandom::u64().unwrap_or(u64::MAX / 2);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::notify::testserver::{FakeServer, Reply};

    /// A client that records its waits instead of sleeping, and the list it records into.
    pub(crate) fn fast_client(secrets: &[&Secret]) -> (HttpClient, Arc<Mutex<Vec<Duration>>>) {
        let waits = Arc::new(Mutex::new(Vec::new()));
        let recorded = waits.clone();
        let config = HttpConfig {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            retry: RetryPolicy {
                max_attempts: 3,
                ..RetryPolicy::default()
            },
            sleep: Arc::new(move |d| recorded.lock().expect("waits").push(d)),
        };
        (HttpClient::new(config, secrets).expect("client"), waits)
    }

    fn get(server: &FakeServer) -> Call {
        Call::get(format!("{}/thing", server.url()), "fetch the thing")
    }

    #[test]
    fn a_server_error_is_retried_then_succeeds() {
        let server = FakeServer::scripted(vec![Reply::status(500), Reply::text(200, "ok")]);
        let (client, waits) = fast_client(&[]);
        let answer = client.send(&get(&server)).expect("second attempt");
        assert_eq!((answer.status, answer.body.as_slice()), (200, &b"ok"[..]));
        assert_eq!(server.requests().len(), 2);
        let waits = waits.lock().expect("waits");
        assert_eq!(waits.len(), 1);
        assert!(waits[0] >= Duration::from_millis(500) && waits[0] <= Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_honoured() {
        let limited = Reply::json(429, serde_json::json!({"message": "slow down"}))
            .header("retry-after", "3");
        let server = FakeServer::scripted(vec![limited, Reply::status(204)]);
        let (client, waits) = fast_client(&[]);
        let post = Call::post(format!("{}/x", server.url()), "post").json(&serde_json::json!({}));
        client.send(&post).expect("retried");
        assert_eq!(*waits.lock().expect("waits"), [Duration::from_secs(3)]);
        assert_eq!(server.requests().len(), 2);
    }

    #[test]
    fn a_secondary_rate_limit_is_retried_after_a_minute() {
        let body = serde_json::json!({"message": "You have exceeded a secondary rate limit"});
        let server = FakeServer::scripted(vec![Reply::json(403, body), Reply::status(200)]);
        let (client, waits) = fast_client(&[]);
        client.send(&get(&server)).expect("retried");
        assert_eq!(*waits.lock().expect("waits"), [Duration::from_secs(60)]);
    }

    #[test]
    fn not_found_is_not_retried() {
        let body = serde_json::json!({"message": "Not Found"});
        let server = FakeServer::scripted(vec![Reply::json(404, body)]);
        let (client, waits) = fast_client(&[]);
        let err = client.send(&get(&server)).expect_err("404");
        assert_eq!(err.to_string(), "fetch the thing: HTTP 404: Not Found");
        assert_eq!(server.requests().len(), 1);
        assert!(waits.lock().expect("waits").is_empty());
    }

    #[test]
    fn server_errors_stop_after_the_last_attempt() {
        let server = FakeServer::scripted(vec![Reply::text(503, "down")]);
        let (client, _) = fast_client(&[]);
        let err = client.send(&get(&server)).expect_err("503");
        assert_eq!(err.status(), Some(503));
        assert_eq!(server.requests().len(), 3);
    }

    #[test]
    fn a_slow_server_times_out_and_an_idempotent_call_is_retried() {
        let server = FakeServer::scripted(vec![
            Reply::status(200).delayed(Duration::from_millis(800)),
            Reply::text(200, "fast"),
        ]);
        let (mut client, _) = fast_client(&[]);
        client.client = Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .expect("client");
        let answer = client.send(&get(&server)).expect("second attempt");
        assert_eq!(answer.body, b"fast");
        let slow = FakeServer::scripted(vec![Reply::status(200).delayed(Duration::from_secs(1))]);
        let post = Call::post(format!("{}/x", slow.url()), "post the thing");
        let err = client.send(&post).expect_err("timeout");
        assert!(
            err.to_string().starts_with("post the thing: timed out"),
            "{err}"
        );
        assert_eq!(
            slow.requests().len(),
            1,
            "a POST is not repeated after a timeout"
        );
    }

    #[test]
    fn a_redirect_to_another_server_is_not_followed_with_the_token() {
        let thief = FakeServer::scripted(vec![Reply::text(200, "[]")]);
        let forge = FakeServer::scripted(vec![
            Reply::status(302).header("location", &format!("{}/steal", thief.url())),
        ]);
        let (client, _) = fast_client(&[]);
        let call = Call::get(format!("{}/notes", forge.url()), "list the notes")
            .header("private-token", "glpat-CANARY-0123456789");
        let err = client
            .send(&call)
            .expect_err("a cross-origin redirect is an error");
        assert_eq!(err.status(), Some(302), "{err}");
        assert!(
            thief.requests().is_empty(),
            "the token went to another server"
        );
        assert_eq!(forge.requests().len(), 1, "not retried");
    }

    #[test]
    fn a_redirect_on_the_same_server_is_followed() {
        let server = FakeServer::start(|request| match request.path() {
            "/old" => Reply::status(301).header("location", "/new"),
            _ => Reply::text(200, "moved"),
        });
        let (client, _) = fast_client(&[]);
        let answer = client
            .send(&Call::get(format!("{}/old", server.url()), "fetch"))
            .expect("followed");
        assert_eq!(answer.body, b"moved");
    }

    #[test]
    fn errors_never_contain_the_secrets() {
        let canary = Secret::new("ghp_CANARY_0123456789");
        let server = FakeServer::scripted(vec![Reply::json(
            400,
            serde_json::json!({"message": format!("bad token {}", canary.expose())}),
        )]);
        let hook = Secret::new(format!("{}/services/T0/B0/CANARY_HOOK", server.url()));
        let (client, _) = fast_client(&[&canary, &hook]);
        let call = Call::post(hook.expose(), "post to the Slack webhook")
            .header("authorization", format!("Bearer {}", canary.expose()));
        let err = client.send(&call).expect_err("400").to_string();
        assert_eq!(err, "post to the Slack webhook: HTTP 400: bad token ***");
        drop(server);
        let err = client.send(&call).expect_err("refused").to_string();
        assert!(
            !err.contains("CANARY") && !err.contains("127.0.0.1"),
            "{err}"
        );
    }
}
