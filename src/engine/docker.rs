//! [`DockerEngine`]: the [`Engine`] over the Docker Engine API, through bollard.
//!
//! Owns connecting (the default socket, `unix://`, `tcp://` with or without TLS), the version
//! handshake, and every API call. Two rules keep a CI job from hanging: connecting fails within
//! [`PING_TIMEOUT`] when no daemon answers, and a streaming call (build, push) that goes silent
//! for [`DockerEngine::with_stream_probe`]'s interval pings the daemon and gives up with
//! [`EngineError::DaemonGone`] when the ping goes unanswered.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;
use bollard::models::{BuildInfo, BuildInfoAux, ImageInspect};
use bollard::query_parameters::{
    BuildImageOptions, BuilderVersion, CreateImageOptions, ListImagesOptions, PruneBuildOptions,
    PruneImagesOptions, PushImageOptions, RemoveImageOptions, TagImageOptions,
};
use bollard::{API_DEFAULT_VERSION, ClientVersion, Docker};
use futures_util::{Stream, StreamExt};
use tokio::task::JoinHandle;

use super::context::stream_context;
use super::control::{self, Prepared};
use super::platforms;
use super::progress::{BuildKitFolder, ClassicFolder};
use super::socket::DaemonSocket;
use super::{
    BuildEvent, BuildOutcome, BuildRequest, Builder, Dockerfile, Engine, EngineError, EventSink,
    INLINE_DOCKERFILE_NAME, ImageInfo, ImageStore, RegistryAuth,
};

/// The socket tried when no `DOCKER_HOST` is given.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How long connecting may wait for the daemon's answer to a ping.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an API call may wait for the response headers. Builds, pushes and prunes use
/// [`LONG_CALL_TIMEOUT`]: the daemon may read a whole context or delete a lot before it answers.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
const LONG_CALL_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// Silence on a build or push stream after which the daemon is pinged.
const STREAM_PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// What the daemon said about itself when we connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonInfo {
    /// Where we connected, as given (`DOCKER_HOST` or the default socket).
    pub address: String,
    /// The engine's version, e.g. `20.10.24+dfsg1`.
    pub server_version: String,
    /// The API version both sides speak, e.g. `1.41`.
    pub api_version: String,
    /// `linux` or `windows`.
    pub os: String,
    /// The daemon's CPU architecture as Go names it (`amd64`, `arm64`).
    pub arch: String,
    /// Whether builds default to BuildKit (see [`DockerEngine::buildkit_available`]).
    pub buildkit: bool,
    /// Where the daemon keeps images, from `/info`.
    pub image_store: ImageStore,
    /// The storage driver (`overlay2`, or the snapshotter on the containerd store).
    pub storage_driver: String,
}

/// The Docker Engine API client.
#[derive(Debug, Clone)]
pub struct DockerEngine {
    /// For quick calls (inspect, tag, list).
    docker: Docker,
    /// For calls the daemon may take long to answer (build, push, prune).
    long_docker: Docker,
    info: DaemonInfo,
    probe_interval: Duration,
    ping_timeout: Duration,
    /// Set once the daemon refused a BuildKit build; shared by clones.
    buildkit_refused: Arc<AtomicBool>,
    /// Where builds for several platforms reach BuildKit's control API.
    socket: DaemonSocket,
}

/// What the handshake learnt, with a client speaking the settled API version.
struct Handshake {
    docker: Docker,
    server_version: String,
    api_version: String,
    os: String,
    arch: String,
    image_store: ImageStore,
    storage_driver: String,
}

/// A parsed `DOCKER_HOST`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Unix(String),
    Tcp { address: String, tls: bool },
}

impl Endpoint {
    fn socket(&self) -> DaemonSocket {
        match self {
            Self::Unix(path) => DaemonSocket::Unix(path.clone()),
            Self::Tcp {
                address,
                tls: false,
            } => DaemonSocket::Tcp(address.clone()),
            Self::Tcp { address, tls: true } => DaemonSocket::Tls(address.clone()),
        }
    }
}

fn parse_host(host: Option<&str>, tls_verify: bool) -> Result<Endpoint, String> {
    let Some(host) = host else {
        return Ok(Endpoint::Unix(DEFAULT_SOCKET.to_owned()));
    };
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(Endpoint::Unix(path.to_owned()));
    }
    if let Some(address) = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
    {
        return Ok(Endpoint::Tcp {
            address: address.to_owned(),
            tls: tls_verify,
        });
    }
    if let Some(address) = host.strip_prefix("https://") {
        return Ok(Endpoint::Tcp {
            address: address.to_owned(),
            tls: true,
        });
    }
    Err("unsupported address: use unix:///path/to/docker.sock or tcp://host:port".to_owned())
}

pub(super) fn api_at_least(version: &str, minimum: (usize, usize)) -> bool {
    parse_api_version(version).is_some_and(|api| (api.major_version, api.minor_version) >= minimum)
}

/// `"1.41"` as bollard's version type; `None` for anything else.
fn parse_api_version(version: &str) -> Option<ClientVersion> {
    let (major, minor) = version.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// Splits `repo[:tag]` at the tag's colon (not a registry port's); the tag defaults to `latest`.
fn split_reference(reference: &str) -> (&str, &str) {
    let name_start = reference.rfind('/').map_or(0, |slash| slash + 1);
    match reference[name_start..].rfind(':') {
        Some(colon) => (
            &reference[..name_start + colon],
            &reference[name_start + colon + 1..],
        ),
        None => (reference, "latest"),
    }
}

/// A session id no other build on this daemon uses (BuildKit mixes up concurrent equal ids).
fn new_session_id() -> String {
    let mut random = [0u8; 16];
    if getrandom::fill(&mut random).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        random[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("buildopt-{}-{hex}", std::process::id())
}

/// True for errors meaning the connection itself broke (as opposed to an answer from the daemon).
fn is_connection_error(error: &BollardError) -> bool {
    matches!(
        error,
        BollardError::HyperResponseError { .. }
            | BollardError::HttpClientError { .. }
            | BollardError::IOError { .. }
            | BollardError::HyperLegacyError { .. }
            | BollardError::RequestTimeoutError
    )
}

fn is_not_found(error: &BollardError) -> bool {
    matches!(
        error,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn docker_credentials(auth: &RegistryAuth) -> DockerCredentials {
    DockerCredentials {
        username: Some(auth.username.clone()),
        password: Some(auth.password.clone()),
        serveraddress: Some(auth.server.clone()),
        ..DockerCredentials::default()
    }
}

fn api_error(call: impl Into<String>) -> impl FnOnce(BollardError) -> EngineError {
    move |source| EngineError::Api {
        call: call.into(),
        source,
    }
}

impl DockerEngine {
    /// Connects to `docker_host` (the `DOCKER_HOST` value; `None` is [`DEFAULT_SOCKET`]), pings it
    /// and negotiates the API version. `tls_verify` (`DOCKER_TLS_VERIFY`) turns on TLS for
    /// `tcp://` with `ca.pem`, `cert.pem` and `key.pem` from `cert_path` (`DOCKER_CERT_PATH`).
    /// Fails with [`EngineError::NoDaemon`] within about [`PING_TIMEOUT`] when nothing answers.
    pub async fn connect(
        docker_host: Option<&str>,
        cert_path: Option<&Path>,
        tls_verify: bool,
    ) -> Result<Self, EngineError> {
        let tried = docker_host.unwrap_or(DEFAULT_SOCKET).to_owned();
        let no_daemon = |reason: String| {
            let hint = match docker_host {
                None => "start the daemon (dockerd) or set DOCKER_HOST to its address".to_owned(),
                Some(_) => "check that a daemon listens there, or fix DOCKER_HOST".to_owned(),
            };
            EngineError::NoDaemon {
                tried: tried.clone(),
                reason,
                hint,
            }
        };
        let endpoint = parse_host(docker_host, tls_verify).map_err(&no_daemon)?;
        let docker = Self::client(&endpoint, cert_path, API_DEFAULT_VERSION).map_err(&no_daemon)?;
        let handshake = Self::handshake(docker, &endpoint, cert_path);
        let version = match tokio::time::timeout(PING_TIMEOUT, handshake).await {
            Ok(Ok(version)) => version,
            Ok(Err(error)) => return Err(no_daemon(error)),
            Err(_) => {
                return Err(no_daemon(format!(
                    "no answer within {} s",
                    PING_TIMEOUT.as_secs()
                )));
            }
        };
        let Handshake {
            docker,
            server_version,
            api_version,
            os,
            arch,
            image_store,
            storage_driver,
        } = version;
        let mut info = DaemonInfo {
            address: tried,
            buildkit: false,
            server_version,
            api_version,
            os,
            arch,
            image_store,
            storage_driver,
        };
        info.buildkit = super::capabilities::buildkit_unavailable(&info).is_none();
        let long_docker = docker.clone().with_timeout(LONG_CALL_TIMEOUT);
        Ok(Self {
            docker,
            long_docker,
            info,
            probe_interval: STREAM_PROBE_INTERVAL,
            ping_timeout: PING_TIMEOUT,
            buildkit_refused: Arc::new(AtomicBool::new(false)),
            socket: endpoint.socket(),
        })
    }

    fn client(
        endpoint: &Endpoint,
        cert_path: Option<&Path>,
        api: &ClientVersion,
    ) -> Result<Docker, String> {
        let timeout = CALL_TIMEOUT.as_secs();
        let connected = match endpoint {
            Endpoint::Unix(path) => Docker::connect_with_unix(path, timeout, api),
            Endpoint::Tcp {
                address,
                tls: false,
            } => Docker::connect_with_http(address, timeout, api),
            Endpoint::Tcp { address, tls: true } => {
                let certs = cert_path.ok_or(
                    "TLS needs DOCKER_CERT_PATH (a folder with ca.pem, cert.pem, key.pem)",
                )?;
                Docker::connect_with_ssl(
                    address,
                    &certs.join("key.pem"),
                    &certs.join("cert.pem"),
                    &certs.join("ca.pem"),
                    timeout,
                    api,
                )
            }
        };
        connected.map_err(|e| e.to_string())
    }

    /// Pings, reads the versions and the image store, then settles on the older of the daemon's
    /// API version and ours. One `/version` call (beside `/info`), not bollard's
    /// `negotiate_version` and a second one: each costs the daemon several milliseconds, paid on
    /// every run. (bollard 0.21 joins request paths so that the `/v1.xx` prefix is dropped: on
    /// the wire every request is unversioned, whatever is settled here.)
    async fn handshake(
        docker: Docker,
        endpoint: &Endpoint,
        cert_path: Option<&Path>,
    ) -> Result<Handshake, String> {
        docker.ping().await.map_err(|e| e.to_string())?;
        let (version, info) = tokio::join!(docker.version(), docker.info());
        let version = version.map_err(|e| e.to_string())?;
        let info = info.map_err(|e| e.to_string())?;
        let server_api = version
            .api_version
            .as_deref()
            .and_then(parse_api_version)
            .ok_or_else(|| {
                format!(
                    "the daemon reported no usable API version ({:?})",
                    version.api_version
                )
            })?;
        let ours = *API_DEFAULT_VERSION;
        let api = if (server_api.major_version, server_api.minor_version)
            < (ours.major_version, ours.minor_version)
        {
            server_api
        } else {
            ours
        };
        Ok(Handshake {
            docker: Self::client(endpoint, cert_path, &api)?,
            server_version: version.version.unwrap_or_default(),
            api_version: format!("{}.{}", api.major_version, api.minor_version),
            os: version.os.unwrap_or_default(),
            arch: version.arch.unwrap_or_default(),
            image_store: ImageStore::from_driver_status(&info.driver_status.unwrap_or_default()),
            storage_driver: info.driver.unwrap_or_default(),
        })
    }

    /// An image's layer diff ids (oldest first) and the bytes of each `docker history` entry
    /// (oldest first; entries without a layer have none). `None` when the image is gone.
    pub async fn layers_and_history(
        &self,
        reference: &str,
    ) -> Result<Option<(Vec<String>, Vec<u64>)>, EngineError> {
        let inspect = match self.docker.inspect_image(reference).await {
            Ok(inspect) => inspect,
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => return Err(api_error(format!("inspect {reference}"))(error)),
        };
        let diff_ids = inspect.root_fs.and_then(|r| r.layers).unwrap_or_default();
        let history = match self.docker.image_history(reference).await {
            Ok(history) => history,
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => return Err(api_error(format!("history of {reference}"))(error)),
        };
        let sizes = history
            .iter()
            .rev()
            .map(|entry| u64::try_from(entry.size).unwrap_or(0))
            .collect();
        Ok(Some((diff_ids, sizes)))
    }

    /// What the daemon said about itself.
    pub fn info(&self) -> &DaemonInfo {
        &self.info
    }

    /// Whether BuildKit builds are possible: API ≥ 1.39 on a Linux daemon. A daemon that disabled
    /// BuildKit in its configuration answers a BuildKit build with an error, after which
    /// [`DockerEngine::build`] retries with the classic builder and this turns false.
    pub fn buildkit_available(&self) -> bool {
        self.info.buildkit && !self.buildkit_refused.load(Ordering::Relaxed)
    }

    /// Overrides the BuildKit detection (for daemons that report an old API but support it, or to
    /// force the classic builder).
    pub fn with_buildkit(mut self, available: bool) -> Self {
        self.info.buildkit = available;
        self
    }

    /// The builder to use when the caller has no preference.
    pub fn default_builder(&self) -> Builder {
        if self.buildkit_available() {
            Builder::BuildKit
        } else {
            Builder::Classic
        }
    }

    /// Sets how long a build or push stream may stay silent before the daemon is pinged, and how
    /// long that ping may take before the daemon is declared gone.
    pub fn with_stream_probe(mut self, interval: Duration, ping_timeout: Duration) -> Self {
        self.probe_interval = interval;
        self.ping_timeout = ping_timeout;
        self
    }

    async fn daemon_answers(&self) -> bool {
        matches!(
            tokio::time::timeout(self.ping_timeout, self.docker.ping()).await,
            Ok(Ok(_))
        )
    }

    /// The next item of a long stream; silence longer than the probe interval is fine as long as
    /// the daemon still answers pings.
    async fn next_or_gone<S: Stream + Unpin>(
        &self,
        stream: &mut S,
        during: &str,
    ) -> Result<Option<S::Item>, EngineError> {
        loop {
            match tokio::time::timeout(self.probe_interval, stream.next()).await {
                Ok(item) => return Ok(item),
                Err(_) if self.daemon_answers().await => continue,
                Err(_) => {
                    let reason = format!(
                        "no output for {:?} and no answer to a ping",
                        self.probe_interval
                    );
                    return Err(EngineError::DaemonGone {
                        during: during.to_owned(),
                        reason,
                    });
                }
            }
        }
    }

    /// Passes the status lines of a push or pull (`what`) of `reference` to `on_event` until the
    /// stream ends; an error message from the daemon or the registry becomes `refused`'s error.
    async fn relay_status<S>(
        &self,
        mut stream: S,
        what: &str,
        reference: &str,
        on_event: EventSink<'_>,
        refused: impl FnOnce(String, String) -> EngineError,
    ) -> Result<(), EngineError>
    where
        S: Stream<Item = Result<Option<String>, BollardError>> + Unpin,
    {
        let during = format!("the {what}");
        while let Some(item) = self.next_or_gone(&mut stream, &during).await? {
            match item {
                Ok(Some(line)) => on_event(BuildEvent::Log { step: None, line }),
                Ok(None) => {}
                Err(error) if is_connection_error(&error) => {
                    return Err(EngineError::DaemonGone {
                        during,
                        reason: error.to_string(),
                    });
                }
                Err(BollardError::DockerStreamError { error: message })
                | Err(BollardError::DockerResponseServerError { message, .. }) => {
                    return Err(refused(reference.to_owned(), message));
                }
                Err(error) => return Err(api_error(format!("{what} {reference}"))(error)),
            }
        }
        Ok(())
    }

    /// One build for every platform of `request`, as one image index, through BuildKit's
    /// control API; then the image is inspected as after any build.
    async fn build_platforms(
        &self,
        request: &BuildRequest,
        on_event: EventSink<'_>,
    ) -> Result<BuildOutcome, EngineError> {
        let (dockerfile_path, generated, dockerfile_text) = resolve_dockerfile(request)?;
        let prepared = Prepared {
            request,
            dockerfile_path,
            generated,
            dockerfile_text,
        };
        let mut outcome = control::build(&self.socket, prepared, on_event).await?;
        outcome.image_id = self.full_image_id(&outcome.image_id).await?;
        Ok(outcome)
    }

    /// Builds with `builder`; a BuildKit build that the daemon refuses because BuildKit is
    /// disabled there is retried once with the classic builder.
    async fn build_with_fallback(
        &self,
        request: &BuildRequest,
        builder: Builder,
        on_event: EventSink<'_>,
    ) -> Result<BuildOutcome, EngineError> {
        match self.build_once(request, builder, on_event).await {
            Err(error) if builder == Builder::BuildKit && buildkit_disabled(&error) => {
                self.buildkit_refused.store(true, Ordering::Relaxed);
                on_event(BuildEvent::Log {
                    step: None,
                    line: "BuildKit is disabled on the daemon; using the classic builder".into(),
                });
                self.build_once(request, Builder::Classic, on_event).await
            }
            other => other,
        }
    }

    async fn build_once(
        &self,
        request: &BuildRequest,
        builder: Builder,
        on_event: EventSink<'_>,
    ) -> Result<BuildOutcome, EngineError> {
        let started = Instant::now();
        let (dockerfile_path, generated, dockerfile_text) = resolve_dockerfile(request)?;
        let options = build_options(request, &dockerfile_path, builder);
        let (body, tar_task) = stream_context(request.context_files.clone(), generated);
        let mut stream =
            self.long_docker
                .build_image(options, None, Some(bollard::body_try_stream(body)));
        let mut progress = Progress::new(builder, dockerfile_text.as_deref());
        let result = self.fold_build(&mut stream, &mut progress, on_event).await;
        drop(stream);
        let image_id = match result {
            Ok(image_id) => image_id,
            Err(error) => return Err(context_error_or(tar_task, error).await),
        };
        self.add_tags(&image_id, request.tags.iter().skip(1))
            .await?;
        Ok(BuildOutcome {
            image_id,
            steps: progress.into_steps(),
            duration: started.elapsed(),
        })
    }

    /// Reads the build stream to its end; returns the image id.
    async fn fold_build<S>(
        &self,
        stream: &mut S,
        progress: &mut Progress,
        on_event: EventSink<'_>,
    ) -> Result<String, EngineError>
    where
        S: Stream<Item = Result<BuildInfo, BollardError>> + Unpin,
    {
        let mut image_id = None;
        while let Some(item) = self.next_or_gone(stream, "the build").await? {
            match item {
                Ok(info) => {
                    if let Some(id) = progress.apply(info, on_event) {
                        image_id = Some(id);
                    }
                }
                Err(BollardError::DockerStreamError { error }) => {
                    return Err(progress.failure(error, on_event));
                }
                Err(BollardError::DockerResponseServerError { message, .. }) => {
                    return Err(EngineError::BuildFailed {
                        step: None,
                        line: None,
                        log_tail: Vec::new(),
                        message,
                    });
                }
                // Docker 28 on the containerd image store now and then ends a finished build's
                // stream in the middle of its last line: once the image id was said and the
                // daemon still answers, the build is done (the id is checked below).
                Err(error)
                    if is_connection_error(&error)
                        && image_id.is_some()
                        && self.daemon_answers().await =>
                {
                    break;
                }
                Err(error) if is_connection_error(&error) => {
                    return Err(EngineError::DaemonGone {
                        during: "the build".into(),
                        reason: error.to_string(),
                    });
                }
                Err(error) => {
                    return Err(EngineError::Api {
                        call: "build".into(),
                        source: error,
                    });
                }
            }
        }
        let printed = progress.finish(on_event);
        let id = image_id
            .or(printed)
            .ok_or_else(|| EngineError::DaemonGone {
                during: "the build".into(),
                reason: "the build stream ended without an image id".into(),
            })?;
        self.full_image_id(&id).await
    }

    /// The image's full id (the classic builder may only print a short one), once the daemon
    /// confirms it has the image.
    async fn full_image_id(&self, id: &str) -> Result<String, EngineError> {
        let inspected = self
            .docker
            .inspect_image(id)
            .await
            .map_err(api_error(format!("inspect {id}")))?;
        Ok(inspected.id.unwrap_or_else(|| id.to_owned()))
    }

    async fn add_tags(
        &self,
        image_id: &str,
        tags: impl Iterator<Item = &String>,
    ) -> Result<(), EngineError> {
        for tag in tags {
            let (repo, tag) = split_reference(tag);
            self.tag(image_id, repo, tag).await?;
        }
        Ok(())
    }
}

/// How long a failed build waits for the context writer to say whether a file was unreadable.
const CONTEXT_ERROR_WAIT: Duration = Duration::from_secs(2);

/// A context file that could not be read explains a broken upload better than the upload's error.
/// The writer is not awaited for long: a frozen daemon may still hold the request body open.
async fn context_error_or(
    tar_task: JoinHandle<Result<(), EngineError>>,
    error: EngineError,
) -> EngineError {
    match tokio::time::timeout(CONTEXT_ERROR_WAIT, tar_task).await {
        Ok(Ok(Err(context_error))) => context_error,
        _ => error,
    }
}

/// Where the daemon finds the Dockerfile, the generated file to add to the tar, and the text
/// for locating steps.
type ResolvedDockerfile = (String, Option<(String, Vec<u8>)>, Option<String>);

fn resolve_dockerfile(request: &BuildRequest) -> Result<ResolvedDockerfile, EngineError> {
    match &request.dockerfile {
        Dockerfile::Contents(bytes) => {
            if request
                .context_files
                .iter()
                .any(|f| f.rel_path == INLINE_DOCKERFILE_NAME)
            {
                let clash = std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the context has a file of that name",
                );
                return Err(EngineError::Io {
                    path: INLINE_DOCKERFILE_NAME.into(),
                    source: clash,
                });
            }
            let text = String::from_utf8_lossy(bytes).into_owned();
            Ok((
                INLINE_DOCKERFILE_NAME.into(),
                Some((INLINE_DOCKERFILE_NAME.into(), bytes.clone())),
                Some(text),
            ))
        }
        Dockerfile::InContext(path) => {
            let file = request.context_files.iter().find(|f| &f.rel_path == path);
            // Only used to point steps at lines: an unreadable file here is the daemon's to report.
            let text = file.and_then(|f| std::fs::read_to_string(&f.abs_path).ok());
            Ok((path.clone(), None, text))
        }
    }
}

/// The one platform `POST /build` is asked for (a build for several goes through
/// [`control::build`]).
fn single_platform(request: &BuildRequest) -> Option<String> {
    match request.platforms.as_slice() {
        [one] => Some(one.clone()),
        _ => None,
    }
}

fn to_hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn build_options(request: &BuildRequest, dockerfile: &str, builder: Builder) -> BuildImageOptions {
    let (version, session) = match builder {
        Builder::BuildKit => (BuilderVersion::BuilderBuildKit, Some(new_session_id())),
        Builder::Classic => (BuilderVersion::BuilderV1, None),
    };
    BuildImageOptions {
        dockerfile: dockerfile.to_owned(),
        t: request.tags.first().cloned(),
        nocache: request.no_cache,
        cachefrom: (!request.cache_from.is_empty()).then(|| request.cache_from.clone()),
        pull: request.pull.then(|| "1".to_owned()),
        rm: true,
        // Without it a failed classic step leaves its container behind.
        forcerm: true,
        buildargs: (!request.build_args.is_empty()).then(|| to_hash_map(&request.build_args)),
        labels: (!request.labels.is_empty()).then(|| to_hash_map(&request.labels)),
        platform: single_platform(request).unwrap_or_default(),
        target: request.target.clone().unwrap_or_default(),
        version,
        session,
        ..BuildImageOptions::default()
    }
}

/// The progress folder of the builder in use.
enum Progress {
    BuildKit(BuildKitFolder),
    Classic(ClassicFolder),
}

impl Progress {
    fn new(builder: Builder, dockerfile: Option<&str>) -> Self {
        match builder {
            Builder::BuildKit => Self::BuildKit(BuildKitFolder::new(dockerfile)),
            Builder::Classic => Self::Classic(ClassicFolder::new(dockerfile)),
        }
    }

    /// Folds one message; returns the image id when the message carries it.
    fn apply(&mut self, info: BuildInfo, on_event: EventSink<'_>) -> Option<String> {
        if let Some(text) = &info.stream {
            match self {
                Self::Classic(folder) => folder.apply(text, Instant::now(), on_event),
                Self::BuildKit(_) => text.lines().for_each(|line| {
                    on_event(BuildEvent::Log {
                        step: None,
                        line: line.into(),
                    })
                }),
            }
        }
        match info.aux {
            Some(BuildInfoAux::BuildKit(status)) => {
                if let Self::BuildKit(folder) = self {
                    folder.apply(&status, on_event);
                }
                None
            }
            Some(BuildInfoAux::Default(image)) => image.id,
            None => None,
        }
    }

    fn failure(&mut self, message: String, on_event: EventSink<'_>) -> EngineError {
        match self {
            Self::BuildKit(folder) => folder.failure(message),
            Self::Classic(folder) => folder.failure(message, Instant::now(), on_event),
        }
    }

    /// Ends the build; returns the id the classic builder printed, if any.
    fn finish(&mut self, on_event: EventSink<'_>) -> Option<String> {
        match self {
            Self::BuildKit(_) => None,
            Self::Classic(folder) => folder.finish(Instant::now(), on_event),
        }
    }

    fn into_steps(self) -> Vec<super::StepRecord> {
        match self {
            Self::BuildKit(folder) => folder.into_steps(),
            Self::Classic(folder) => folder.into_steps(),
        }
    }
}

/// Whether BuildKit was refused because the daemon disabled it.
fn buildkit_disabled(error: &EngineError) -> bool {
    matches!(error, EngineError::BuildFailed { step: None, message, .. } if message.contains("buildkit is not enabled"))
}

fn image_info(inspect: ImageInspect) -> ImageInfo {
    ImageInfo {
        id: inspect.id.unwrap_or_default(),
        size: inspect
            .size
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0),
        layers: inspect
            .root_fs
            .and_then(|r| r.layers)
            .map_or(0, |l| l.len()),
        repo_digests: inspect.repo_digests.unwrap_or_default(),
        repo_tags: inspect.repo_tags.unwrap_or_default(),
        labels: inspect
            .config
            .and_then(|c| c.labels)
            .map(|l| l.into_iter().collect())
            .unwrap_or_default(),
        created: inspect.created.map(|c| c.to_rfc3339()),
        platforms: Vec::new(),
    }
}

fn freed(bytes: Option<i64>) -> u64 {
    bytes.and_then(|b| u64::try_from(b).ok()).unwrap_or(0)
}

impl Engine for DockerEngine {
    /// Builds with the requested builder (falling back to the classic one where BuildKit is
    /// disabled), or for several platforms through BuildKit's control API; a step the daemon
    /// could not run for its platform is said in one line.
    async fn build(
        &self,
        request: &BuildRequest,
        on_event: EventSink<'_>,
    ) -> Result<BuildOutcome, EngineError> {
        let wants_buildkit =
            request.builder == Builder::BuildKit && !self.buildkit_refused.load(Ordering::Relaxed);
        let builder = if wants_buildkit {
            Builder::BuildKit
        } else {
            Builder::Classic
        };
        let built = if request.platforms.len() > 1 {
            self.build_platforms(request, on_event).await
        } else {
            self.build_with_fallback(request, builder, on_event).await
        };
        built.map_err(|error| {
            super::capabilities::unrunnable_platform(&error, &request.platforms).unwrap_or(error)
        })
    }

    async fn inspect(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        let inspect = match self.docker.inspect_image(reference).await {
            Ok(inspect) => inspect,
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => return Err(api_error(format!("inspect {reference}"))(error)),
        };
        let index = platforms::is_index(
            inspect
                .descriptor
                .as_ref()
                .and_then(|d| d.media_type.as_deref()),
        );
        let mut image = image_info(inspect);
        if index && api_at_least(&self.info.api_version, platforms::PLATFORM_INSPECT_API) {
            image.platforms = platforms::platform_images(&self.socket, &image.id).await?;
        }
        Ok(Some(image))
    }

    async fn find_by_label(&self, key: &str, value: &str) -> Result<Vec<ImageInfo>, EngineError> {
        let filters = HashMap::from([("label".to_owned(), vec![format!("{key}={value}")])]);
        let options = ListImagesOptions {
            filters: Some(filters),
            ..ListImagesOptions::default()
        };
        let call = || format!("list images labelled {key}={value}");
        let summaries = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(api_error(call()))?;
        let mut images = Vec::new();
        for summary in summaries {
            // An image removed between the listing and the inspection is simply not found.
            if let Some(image) = self.inspect(&summary.id).await? {
                images.push(image);
            }
        }
        Ok(images)
    }

    async fn tag(&self, image: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let options = TagImageOptions {
            repo: Some(repo.to_owned()),
            tag: Some(tag.to_owned()),
        };
        let call = format!("tag {image} as {repo}:{tag}");
        self.docker
            .tag_image(image, Some(options))
            .await
            .map_err(api_error(call))
    }

    async fn push(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<&RegistryAuth>,
        on_event: EventSink<'_>,
    ) -> Result<(), EngineError> {
        let reference = format!("{repo}:{tag}");
        let credentials = credentials.map(docker_credentials);
        let options = PushImageOptions {
            tag: Some(tag.to_owned()),
            ..PushImageOptions::default()
        };
        let stream = self
            .long_docker
            .push_image(repo, Some(options), credentials)
            .map(|item| item.map(|info| info.status));
        self.relay_status(
            stream,
            "push",
            &reference,
            on_event,
            |reference, message| EngineError::Push { reference, message },
        )
        .await
    }

    async fn push_manifest_list(
        &self,
        repo: &str,
        tag: &str,
        platforms: &[(String, String)],
        credentials: Option<&RegistryAuth>,
    ) -> Result<String, EngineError> {
        super::registry::push_manifest_list(repo, tag, platforms, credentials).await
    }

    async fn registry_digest(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<&RegistryAuth>,
    ) -> Result<Option<String>, EngineError> {
        let reference = format!("{repo}:{tag}");
        match self
            .docker
            .inspect_registry_image(&reference, credentials.map(docker_credentials))
            .await
        {
            Ok(inspect) => Ok(Some(inspect.descriptor.digest.unwrap_or_default())),
            Err(error) if is_not_found(&error) => Ok(None),
            Err(error) if is_connection_error(&error) => Err(EngineError::DaemonGone {
                during: format!("the registry lookup of {reference}"),
                reason: error.to_string(),
            }),
            Err(BollardError::DockerResponseServerError { message, .. }) => {
                Err(EngineError::Registry { reference, message })
            }
            Err(error) => Err(api_error(format!("registry lookup {reference}"))(error)),
        }
    }

    async fn pull(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<&RegistryAuth>,
        on_event: EventSink<'_>,
    ) -> Result<(), EngineError> {
        let reference = format!("{repo}:{tag}");
        let options = CreateImageOptions {
            from_image: Some(repo.to_owned()),
            tag: Some(tag.to_owned()),
            ..CreateImageOptions::default()
        };
        let stream = self
            .long_docker
            .create_image(Some(options), None, credentials.map(docker_credentials))
            .map(|item| item.map(|info| info.status));
        self.relay_status(
            stream,
            "pull",
            &reference,
            on_event,
            |reference, message| EngineError::Registry { reference, message },
        )
        .await
    }

    async fn remove_image(&self, reference: &str) -> Result<bool, EngineError> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            platforms: None,
        };
        match self
            .docker
            .remove_image(reference, Some(options), None)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if is_not_found(&error) => Ok(false),
            Err(error) => Err(api_error(format!("remove {reference}"))(error)),
        }
    }

    async fn prune_dangling(&self) -> Result<u64, EngineError> {
        let filters = HashMap::from([("dangling".to_owned(), vec!["true".to_owned()])]);
        let options = PruneImagesOptions {
            filters: Some(filters),
        };
        let pruned = self
            .long_docker
            .prune_images(Some(options))
            .await
            .map_err(api_error("prune dangling images"))?;
        Ok(freed(pruned.space_reclaimed))
    }

    async fn prune_build_cache(&self, older_than: Duration) -> Result<u64, EngineError> {
        // Only `all` and `filters` exist on old daemons (API 1.41); the newer size knobs stay unset.
        let filters = HashMap::from([(
            "until".to_owned(),
            vec![format!("{}s", older_than.as_secs())],
        )]);
        let options = PruneBuildOptions {
            filters: Some(filters),
            all: Some(true),
            ..PruneBuildOptions::default()
        };
        let pruned = self
            .long_docker
            .prune_build(Some(options))
            .await
            .map_err(api_error("prune build cache"))?;
        Ok(freed(pruned.space_reclaimed))
    }
}

/// Access for the sibling modules that add calls of their own (`image_io.rs`).
impl DockerEngine {
    /// The client for calls the daemon may take long to answer.
    pub(super) fn long_client(&self) -> &Docker {
        &self.long_docker
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_into_endpoints() {
        assert_eq!(
            parse_host(None, false),
            Ok(Endpoint::Unix(DEFAULT_SOCKET.into()))
        );
        assert_eq!(
            parse_host(Some("unix:///run/d.sock"), false),
            Ok(Endpoint::Unix("/run/d.sock".into()))
        );
        assert_eq!(
            parse_host(Some("tcp://docker:2376"), true),
            Ok(Endpoint::Tcp {
                address: "docker:2376".into(),
                tls: true
            })
        );
        assert_eq!(
            parse_host(Some("tcp://127.0.0.1:2375"), false),
            Ok(Endpoint::Tcp {
                address: "127.0.0.1:2375".into(),
                tls: false
            })
        );
        assert!(parse_host(Some("ssh://me@host"), false).is_err());
    }

    #[test]
    fn api_versions_compare_numerically() {
        assert!(api_at_least("1.41", (1, 39)));
        assert!(api_at_least("1.39", (1, 39)));
        assert!(!api_at_least("1.38", (1, 39)));
        assert!(!api_at_least("1.9", (1, 39)));
        assert!(!api_at_least("garbage", (1, 39)));
    }

    #[test]
    fn references_split_at_the_tag_not_the_registry_port() {
        assert_eq!(split_reference("app:ci"), ("app", "ci"));
        assert_eq!(
            split_reference("127.0.0.1:5000/team/app:1.2"),
            ("127.0.0.1:5000/team/app", "1.2")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/team/app"),
            ("127.0.0.1:5000/team/app", "latest")
        );
        assert_eq!(split_reference("app"), ("app", "latest"));
    }

    #[test]
    fn session_ids_are_unique() {
        assert_ne!(new_session_id(), new_session_id());
    }

    #[test]
    fn options_carry_the_request() {
        let mut request = BuildRequest::new(Vec::new(), Dockerfile::InContext("Dockerfile".into()));
        request.tags = vec!["a:1".into(), "a:2".into()];
        request.build_args.insert("V".into(), "1".into());
        request.target = Some("runtime".into());
        let options = build_options(&request, "Dockerfile", Builder::BuildKit);
        assert_eq!(options.t.as_deref(), Some("a:1"));
        assert_eq!(options.target, "runtime");
        assert_eq!(
            options.buildargs,
            Some(HashMap::from([("V".into(), "1".into())]))
        );
        assert_eq!(options.version, BuilderVersion::BuilderBuildKit);
        assert!(options.session.is_some());
        let classic = build_options(&request, "Dockerfile", Builder::Classic);
        assert_eq!(
            (classic.version, classic.session),
            (BuilderVersion::BuilderV1, None)
        );
    }

    #[test]
    fn an_inline_dockerfile_may_not_shadow_a_context_file() {
        let clash = super::super::ContextFile {
            rel_path: INLINE_DOCKERFILE_NAME.into(),
            abs_path: "/x".into(),
        };
        let request =
            BuildRequest::new(vec![clash], Dockerfile::Contents(b"FROM scratch".to_vec()));
        assert!(matches!(
            resolve_dockerfile(&request),
            Err(EngineError::Io { .. })
        ));
    }
}
