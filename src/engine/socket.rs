//! Raw connections to the daemon, for what bollard keeps to itself or has no call for: upgrading
//! `/session` and `/grpc` to HTTP/2 (BuildKit's control API, `control.rs`) and the image
//! inspections with query parameters bollard does not send (`?manifests=1`, `?platform=`).
//!
//! A unix socket or plain TCP; a TLS address is refused with [`EngineError::Unsupported`] by
//! the callers, which name what needed it.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tonic::transport::server::Connected;

use super::EngineError;

/// Where the daemon listens, as far as this module can reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DaemonSocket {
    Unix(String),
    Tcp(String),
    /// `tcp://` with TLS: not reachable from here.
    Tls(String),
}

/// A connection to the daemon that can be upgraded and then served or spoken over.
pub(super) trait Dial:
    AsyncRead + AsyncWrite + Connected + Unpin + Send + Sized + 'static
{
    fn dial(address: &str) -> impl Future<Output = io::Result<Self>> + Send;
}

impl Dial for UnixStream {
    async fn dial(address: &str) -> io::Result<Self> {
        UnixStream::connect(address).await
    }
}

impl Dial for TcpStream {
    async fn dial(address: &str) -> io::Result<Self> {
        TcpStream::connect(address).await
    }
}

pub(super) fn gone(during: &str, reason: impl std::fmt::Display) -> EngineError {
    EngineError::DaemonGone {
        during: during.to_owned(),
        reason: reason.to_string(),
    }
}

/// Opens a connection to `address` and upgrades `POST path` to h2c with `headers`.
pub(super) async fn upgrade<S: Dial>(
    address: &str,
    path: &str,
    headers: &[(&str, String)],
) -> Result<S, EngineError> {
    let during = format!("the upgrade of {path}");
    let mut stream = S::dial(address).await.map_err(|e| gone(&during, e))?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\
         Content-Length: 0\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| gone(&during, e))?;
    let head = read_head(&mut stream).await.map_err(|e| gone(&during, e))?;
    let status = status_line(&head);
    if status.split_whitespace().nth(1) != Some("101") {
        return Err(EngineError::Unsupported {
            what: format!("BuildKit's control API ({path} answered {status:?})"),
        });
    }
    Ok(stream)
}

/// `GET path_and_query` as JSON; `None` when the daemon answers 404.
pub(super) async fn get_json(
    socket: &DaemonSocket,
    path_and_query: &str,
) -> Result<Option<serde_json::Value>, EngineError> {
    match socket {
        DaemonSocket::Unix(path) => get_json_over::<UnixStream>(path, path_and_query).await,
        DaemonSocket::Tcp(address) => get_json_over::<TcpStream>(address, path_and_query).await,
        DaemonSocket::Tls(address) => Err(EngineError::Unsupported {
            what: format!("GET {path_and_query} through {address} (TLS)"),
        }),
    }
}

async fn get_json_over<S: Dial>(
    address: &str,
    path_and_query: &str,
) -> Result<Option<serde_json::Value>, EngineError> {
    let during = format!("GET {path_and_query}");
    let mut stream = S::dial(address).await.map_err(|e| gone(&during, e))?;
    // HTTP/1.0: the daemon answers with the whole body and closes, never chunked.
    let request = format!("GET {path_and_query} HTTP/1.0\r\nHost: docker\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| gone(&during, e))?;
    let head = read_head(&mut stream).await.map_err(|e| gone(&during, e))?;
    let mut body = Vec::new();
    stream
        .read_to_end(&mut body)
        .await
        .map_err(|e| gone(&during, e))?;
    let status = status_line(&head);
    match status.split_whitespace().nth(1) {
        Some("200") => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| gone(&during, format!("unreadable answer: {e}"))),
        Some("404") => Ok(None),
        _ => Err(EngineError::Unsupported {
            what: format!(
                "{during}: {status} {}",
                String::from_utf8_lossy(&body).trim()
            ),
        }),
    }
}

fn status_line(head: &str) -> &str {
    head.lines().next().unwrap_or_default()
}

/// Reads an HTTP response head byte by byte, so nothing of what follows it (an HTTP/2 stream
/// after an upgrade) is consumed.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<String> {
    const LIMIT: usize = 16 * 1024;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() == LIMIT {
            return Err(io::Error::other("response head too long"));
        }
        head.push(stream.read_u8().await?);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_response_head_is_read_up_to_its_blank_line_and_no_further() {
        let answer = b"HTTP/1.1 101 UPGRADED\r\nUpgrade: h2c\r\n\r\nPRI * HTTP/2.0";
        let mut stream = &answer[..];
        let head = read_head(&mut stream).await.expect("head");
        assert_eq!(status_line(&head), "HTTP/1.1 101 UPGRADED");
        assert_eq!(
            stream, b"PRI * HTTP/2.0",
            "the HTTP/2 preface is left unread"
        );
        let mut cut = &b"HTTP/1.1 200 OK\r\n"[..];
        assert!(read_head(&mut cut).await.is_err(), "a head without its end");
    }
}
