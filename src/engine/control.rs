//! One build for several platforms through BuildKit's control API, as `docker buildx` does on
//! the daemon's own BuildKit.
//!
//! `POST /build` takes exactly one platform, so a build for several goes to the daemon's
//! `/session` and `/grpc` endpoints instead, each an HTTP connection upgraded to HTTP/2:
//!
//! - on `/session` the daemon is the gRPC client and buildopt serves the build's session:
//!   the context tar (`moby.upload.v1.Upload/Pull`, written file by file as
//!   [`stream_context`] does for `POST /build`, so memory stays bounded whatever its size) and
//!   the health check BuildKit keeps the session alive with;
//! - on `/grpc` buildopt is the client of BuildKit's `Control` service: `Solve` runs the
//!   Dockerfile frontend for every platform at once and exports one image index through the
//!   daemon's `moby` exporter (tagged with every tag, its digest in the answer), while
//!   `Status` streams the same vertex updates `POST /build` relays, folded by
//!   [`BuildKitFolder`].
//!
//! Reaching the daemon needs a socket of our own (bollard keeps its upgrade to itself, see
//! `socket.rs`): a unix socket or plain TCP; a TLS address is refused with
//! [`EngineError::Unsupported`]. A daemon that goes away breaks the connections
//! ([`EngineError::DaemonGone`]); unlike `POST /build`, a silent but connected daemon is not
//! pinged, so only the build deadline ends a build it never finishes.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard_buildkit_proto::health::health_server::{Health, HealthServer};
use bollard_buildkit_proto::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
    health_check_response::ServingStatus,
};
use bollard_buildkit_proto::moby::buildkit::v1::control_client::ControlClient;
use bollard_buildkit_proto::moby::buildkit::v1::{SolveRequest, StatusRequest};
use bollard_buildkit_proto::moby::upload::v1::BytesMessage;
use bollard_buildkit_proto::moby::upload::v1::upload_server::{Upload, UploadServer};
use futures_util::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, UnixStream};
use tonic::transport::{Channel, Endpoint as ChannelEndpoint};

use super::context::stream_context;
use super::progress::BuildKitFolder;
use super::socket::{DaemonSocket, Dial, gone, upgrade};
use super::{BuildOutcome, BuildRequest, ContextFile, EngineError, EventSink};

/// The exporter answer key that holds the digest of what was exported (the index digest, which
/// is the image's id on the containerd store).
const DIGEST_KEY: &str = "containerimage.digest";

/// How long the status stream may still deliver after `Solve` answered (the last vertex
/// completions may arrive just after it).
const STATUS_DRAIN: Duration = Duration::from_secs(5);

/// The context's name in the session: the Dockerfile frontend fetches
/// `http://buildkit-session/<name>` through the session's upload service.
const CONTEXT_UPLOAD: &str = "context";

/// What a build sends besides the request: where the Dockerfile is in the context, the file
/// generated into it, and its text (to point steps at lines).
pub(super) struct Prepared<'a> {
    pub(super) request: &'a BuildRequest,
    pub(super) dockerfile_path: String,
    pub(super) generated: Option<(String, Vec<u8>)>,
    pub(super) dockerfile_text: Option<String>,
}

/// Builds `prepared.request` for all its platforms as one image index on the daemon at `socket`.
pub(super) async fn build(
    socket: &DaemonSocket,
    prepared: Prepared<'_>,
    on_event: EventSink<'_>,
) -> Result<BuildOutcome, EngineError> {
    match socket {
        DaemonSocket::Unix(path) => build_over::<UnixStream>(path, prepared, on_event).await,
        DaemonSocket::Tcp(address) => build_over::<TcpStream>(address, prepared, on_event).await,
        DaemonSocket::Tls(address) => Err(EngineError::Unsupported {
            what: format!(
                "a build for several platforms through {address}: BuildKit's control API is \
                 reached over the daemon's unix socket or plain tcp:// only"
            ),
        }),
    }
}

async fn build_over<S: Dial>(
    address: &str,
    prepared: Prepared<'_>,
    on_event: EventSink<'_>,
) -> Result<BuildOutcome, EngineError> {
    let started = Instant::now();
    let session = new_id();
    // Served until this function returns or its future is dropped (the build deadline).
    let _served = open_session::<S>(address, &session, &prepared).await?;
    let control = control_client::<S>(address).await?;
    let (image_id, steps) = solve(control, &session, &prepared, on_event).await?;
    Ok(BuildOutcome {
        image_id,
        steps,
        duration: started.elapsed(),
    })
}

/// A build or session id: 25 random base-36 characters, like BuildKit's own.
fn new_id() -> String {
    let mut random = [0u8; 25];
    if getrandom::fill(&mut random).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
            .to_le_bytes();
        random[..16].copy_from_slice(&nanos);
    }
    random
        .iter()
        .map(|b| char::from_digit(u32::from(*b % 36), 36).unwrap_or('0'))
        .collect()
}

/// The gRPC methods the session serves, as the daemon must be told them.
const SESSION_METHODS: [&str; 2] = [
    "/moby.upload.v1.Upload/Pull",
    "/grpc.health.v1.Health/Check",
];

/// The task serving a build's session; dropping it ends the session.
struct ServedSession(tokio::task::JoinHandle<()>);

impl Drop for ServedSession {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Upgrades `/session` and serves the build's context and health on it until dropped.
async fn open_session<S: Dial>(
    address: &str,
    session: &str,
    prepared: &Prepared<'_>,
) -> Result<ServedSession, EngineError> {
    let mut headers = vec![
        ("X-Docker-Expose-Session-Uuid", session.to_owned()),
        ("X-Docker-Expose-Session-Name", "buildopt".to_owned()),
        ("X-Docker-Expose-Session-Sharedkey", session.to_owned()),
    ];
    headers.extend(
        SESSION_METHODS
            .iter()
            .map(|m| ("X-Docker-Expose-Session-Grpc-Method", (*m).to_owned())),
    );
    let connection = upgrade::<S>(address, "/session", &headers).await?;
    let context = ContextUpload {
        files: Arc::new(prepared.request.context_files.clone()),
        generated: prepared.generated.clone(),
    };
    let router = tonic::transport::Server::builder()
        .add_service(HealthServer::new(Healthy))
        .add_service(UploadServer::new(context));
    let incoming = futures_util::stream::iter([Ok::<_, io::Error>(connection)]);
    Ok(ServedSession(tokio::spawn(async move {
        // The session ends with the build (the task is aborted) or when the daemon hangs up.
        let _ = router.serve_with_incoming(incoming).await;
    })))
}

/// A `Control` client on an upgraded `/grpc` connection.
async fn control_client<S: Dial>(address: &str) -> Result<ControlClient<Channel>, EngineError> {
    let address = address.to_owned();
    let connector = tower::service_fn(move |_| {
        let address = address.clone();
        async move {
            let stream = upgrade::<S>(&address, "/grpc", &[])
                .await
                .map_err(io::Error::other)?;
            Ok::<_, io::Error>(TokioIo::new(stream))
        }
    });
    // The URI is never dialled: the connector above opens the connection.
    let channel = ChannelEndpoint::from_static("http://buildkit.invalid")
        .connect_with_connector(connector)
        .await
        .map_err(|e| gone("the connection to BuildKit's control API", e))?;
    Ok(ControlClient::new(channel)
        .max_decoding_message_size(MESSAGE_LIMIT)
        .max_encoding_message_size(MESSAGE_LIMIT))
}

/// BuildKit's own limit for one gRPC message.
const MESSAGE_LIMIT: usize = 16 << 20;

/// Runs the solve while folding its status; returns the exported image's digest and the steps.
async fn solve(
    mut control: ControlClient<Channel>,
    session: &str,
    prepared: &Prepared<'_>,
    on_event: EventSink<'_>,
) -> Result<(String, Vec<super::StepRecord>), EngineError> {
    let build_ref = new_id();
    let request = solve_request(&build_ref, session, prepared);
    let mut folder = BuildKitFolder::new(prepared.dockerfile_text.as_deref());
    let status_client = control.clone();
    let solved = {
        let watch = follow_status(status_client, &build_ref, &mut folder, on_event);
        let solve = control.solve(request);
        tokio::pin!(watch, solve);
        tokio::select! {
            solved = &mut solve => {
                let _ = tokio::time::timeout(STATUS_DRAIN, &mut watch).await;
                solved
            }
            () = &mut watch => solve.await,
        }
    };
    let response = match solved {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::Unavailable => {
            return Err(gone("the build", status.message()));
        }
        Err(status) => return Err(folder.failure(status.message().to_owned())),
    };
    let digest = response
        .exporter_response
        .get(DIGEST_KEY)
        .cloned()
        .ok_or_else(|| gone("the build", "BuildKit exported no image digest"))?;
    Ok((digest, folder.into_steps()))
}

/// Folds `Control.Status` for `build_ref` until the stream ends; a broken stream only ends the
/// progress (the solve's own answer says how the build went).
async fn follow_status(
    mut control: ControlClient<Channel>,
    build_ref: &str,
    folder: &mut BuildKitFolder,
    on_event: EventSink<'_>,
) {
    let request = StatusRequest {
        r#ref: build_ref.to_owned(),
    };
    let Ok(response) = control.status(request).await else {
        return;
    };
    let mut stream = response.into_inner();
    while let Ok(Some(status)) = stream.message().await {
        folder.apply(&status, on_event);
    }
}

/// The Dockerfile frontend's attributes and the `moby` exporter for `prepared.request`.
fn solve_request(build_ref: &str, session: &str, prepared: &Prepared<'_>) -> SolveRequest {
    let request = prepared.request;
    let mut attrs = HashMap::from([
        ("filename".to_owned(), prepared.dockerfile_path.clone()),
        (
            "context".to_owned(),
            format!("http://buildkit-session/{CONTEXT_UPLOAD}"),
        ),
        ("platform".to_owned(), request.platforms.join(",")),
    ]);
    if let Some(target) = &request.target {
        attrs.insert("target".into(), target.clone());
    }
    if request.no_cache {
        attrs.insert("no-cache".into(), String::new());
    }
    if request.pull {
        attrs.insert("image-resolve-mode".into(), "pull".into());
    }
    for (key, value) in &request.build_args {
        attrs.insert(format!("build-arg:{key}"), value.clone());
    }
    for (key, value) in &request.labels {
        attrs.insert(format!("label:{key}"), value.clone());
    }
    let mut exporter = HashMap::new();
    if !request.tags.is_empty() {
        exporter.insert("name".to_owned(), request.tags.join(","));
    }
    SolveRequest {
        r#ref: build_ref.to_owned(),
        session: session.to_owned(),
        frontend: "dockerfile.v0".into(),
        frontend_attrs: attrs,
        exporter_deprecated: "moby".into(),
        exporter_attrs_deprecated: exporter,
        ..SolveRequest::default()
    }
}

/// Serves the context tar, written anew for each pull.
struct ContextUpload {
    files: Arc<Vec<ContextFile>>,
    generated: Option<(String, Vec<u8>)>,
}

type ContextStream = Pin<Box<dyn Stream<Item = Result<BytesMessage, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Upload for ContextUpload {
    type PullStream = ContextStream;

    async fn pull(
        &self,
        request: tonic::Request<tonic::Streaming<BytesMessage>>,
    ) -> Result<tonic::Response<ContextStream>, tonic::Status> {
        let path = request
            .metadata()
            .get("urlpath")
            .and_then(|v| v.to_str().ok());
        if path != Some(&format!("/{CONTEXT_UPLOAD}")) {
            return Err(tonic::Status::not_found("no such upload in this session"));
        }
        let (body, _writer) = stream_context(self.files.as_ref().clone(), self.generated.clone());
        let messages = body.map(|chunk| {
            chunk
                .map(|data| BytesMessage {
                    data: data.to_vec(),
                })
                .map_err(|e| tonic::Status::internal(e.to_string()))
        });
        Ok(tonic::Response::new(Box::pin(messages)))
    }
}

/// Answers BuildKit's health checks of the session.
struct Healthy;

type HealthStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Health for Healthy {
    type WatchStream = HealthStream;

    async fn check(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        Ok(tonic::Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    async fn list(
        &self,
        _: tonic::Request<HealthListRequest>,
    ) -> Result<tonic::Response<HealthListResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("only Check is served"))
    }

    async fn watch(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthStream>, tonic::Status> {
        Err(tonic::Status::unimplemented("only Check is served"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Dockerfile;

    #[test]
    fn the_solve_asks_the_dockerfile_frontend_for_every_platform_and_the_moby_exporter() {
        let mut request =
            BuildRequest::new(Vec::new(), Dockerfile::Contents(b"FROM scratch".to_vec()));
        request.platforms = vec!["linux/amd64".into(), "linux/arm64".into()];
        request.tags = vec!["reg:5000/app:latest".into(), "reg:5000/app:1".into()];
        request.target = Some("runtime".into());
        request.build_args.insert("V".into(), "1".into());
        request
            .labels
            .insert("buildopt.inputs-digest".into(), "blake3:00".into());
        request.pull = true;
        let prepared = Prepared {
            request: &request,
            dockerfile_path: ".buildopt.Dockerfile".into(),
            generated: None,
            dockerfile_text: None,
        };
        let solve = solve_request("ref1", "session1", &prepared);
        assert_eq!(
            (solve.r#ref.as_str(), solve.session.as_str()),
            ("ref1", "session1")
        );
        assert_eq!(solve.frontend, "dockerfile.v0");
        let attrs = &solve.frontend_attrs;
        assert_eq!(attrs["platform"], "linux/amd64,linux/arm64");
        assert_eq!(attrs["filename"], ".buildopt.Dockerfile");
        assert_eq!(attrs["context"], "http://buildkit-session/context");
        assert_eq!(attrs["target"], "runtime");
        assert_eq!(attrs["build-arg:V"], "1");
        assert_eq!(attrs["label:buildopt.inputs-digest"], "blake3:00");
        assert_eq!(attrs["image-resolve-mode"], "pull");
        assert!(!attrs.contains_key("no-cache"));
        assert_eq!(solve.exporter_deprecated, "moby");
        assert_eq!(
            solve.exporter_attrs_deprecated["name"],
            "reg:5000/app:latest,reg:5000/app:1"
        );
    }

    #[test]
    fn ids_are_25_base36_characters_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 25);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
            "{a}"
        );
        assert_ne!(a, b);
    }
}
