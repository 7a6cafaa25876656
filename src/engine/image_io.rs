//! `docker save` and `docker load` as streams, for the build cache.
//!
//! Both bridge bollard's async byte streams to synchronous readers and writers on a blocking
//! thread, so the tar handling (in `cache::docker_tar`) stays plain `Read`/`Write` code and
//! nothing holds a whole image in memory: at most a few chunks are in flight.

use std::io::{self, Read, Write};

use bollard::query_parameters::ImportImageOptionsBuilder;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{DockerEngine, EngineError};

/// Chunks buffered between the tar writer and the upload (each at most [`CHUNK`] bytes).
const IN_FLIGHT_CHUNKS: usize = 8;
const CHUNK: usize = 1 << 20;

impl DockerEngine {
    /// Streams `docker save` of `references` into `consume`, which runs on a blocking thread and
    /// reads the tar as it arrives.
    pub async fn save_images<T, E>(
        &self,
        references: &[String],
        consume: impl FnOnce(&mut dyn Read) -> Result<T, E> + Send + 'static,
    ) -> Result<Result<T, E>, EngineError>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let names: Vec<&str> = references.iter().map(String::as_str).collect();
        let stream = self
            .long_client()
            .export_images(&names)
            .map(|chunk| chunk.map_err(io::Error::other));
        let reader = StreamReader::new(Box::pin(stream));
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let _guard = handle.enter();
            let mut bridge = SyncIoBridge::new(reader);
            consume(&mut bridge)
        })
        .await
        .map_err(|e| EngineError::DaemonGone {
            during: "docker save".into(),
            reason: e.to_string(),
        })
    }

    /// Streams the tar that `produce` writes (on a blocking thread) into `docker load`; returns
    /// the daemon's "Loaded image" lines.
    pub async fn load_images(
        &self,
        produce: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'static,
    ) -> Result<Vec<String>, EngineError> {
        let upload = self.start_load();
        let mut stream = upload.stream;
        let writer_task = tokio::task::spawn_blocking(move || {
            produce(&mut stream)?;
            stream.finish()
        });
        let loaded = upload.done.await;
        let written = writer_task.await.map_err(|e| EngineError::DaemonGone {
            during: "docker load".into(),
            reason: e.to_string(),
        })?;
        written.map_err(|source| EngineError::Io {
            path: "docker load stream".into(),
            source,
        })?;
        loaded.map_err(|e| EngineError::DaemonGone {
            during: "docker load".into(),
            reason: e.to_string(),
        })?
    }

    /// Starts a `docker load` whose tar is written to the returned [`LoadUpload::stream`] (from a
    /// thread that may block, never from async code); [`LoadUpload::done`] gives the daemon's
    /// "Loaded image" lines once the stream was finished. A stream dropped without
    /// [`LoadStream::finish`] fails the upload, so the daemon loads nothing from it. Must be
    /// called within the tokio runtime's context.
    pub fn start_load(&self) -> LoadUpload {
        let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT_CHUNKS);
        let docker = self.long_client().clone();
        let done = tokio::spawn(async move {
            let body = tokio_stream_of(receiver);
            let options = ImportImageOptionsBuilder::default().quiet(true).build();
            let mut messages = docker.import_image_stream(options, body, None);
            let mut loaded = Vec::new();
            let mut failure = None;
            while let Some(message) = messages.next().await {
                match message {
                    Ok(info) => loaded.extend(info.stream.map(|s| s.trim().to_owned())),
                    Err(error) => failure = Some(error),
                }
            }
            match failure {
                Some(source) => Err(EngineError::Api {
                    call: "docker load".into(),
                    source,
                }),
                None => Ok(loaded),
            }
        });
        LoadUpload {
            stream: LoadStream {
                writer: Some(io::BufWriter::with_capacity(CHUNK, ChannelWriter(sender))),
            },
            done,
        }
    }
}

/// A `docker load` under way (see [`DockerEngine::start_load`]).
pub struct LoadUpload {
    pub stream: LoadStream,
    pub done: tokio::task::JoinHandle<Result<Vec<String>, EngineError>>,
}

/// The tar going to `docker load`. Writes block while the upload is [`IN_FLIGHT_CHUNKS`] behind.
pub struct LoadStream {
    writer: Option<io::BufWriter<ChannelWriter>>,
}

impl LoadStream {
    /// Sends what is buffered and ends the upload: the daemon then loads what it received.
    pub fn finish(mut self) -> io::Result<()> {
        let writer = self.writer.take().expect("open until finish or drop");
        writer.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    }

    fn writer(&mut self) -> &mut io::BufWriter<ChannelWriter> {
        self.writer.as_mut().expect("open until finish or drop")
    }
}

impl Write for LoadStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for LoadStream {
    /// Not finished: the buffered rest is dropped and the upload fails, so the daemon does not
    /// load a truncated tar.
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            let (channel, _unsent) = writer.into_parts();
            let _ = channel
                .0
                .blocking_send(Err(io::Error::other("the docker load tar was abandoned")));
        }
    }
}

/// A `Write` that sends each buffer as one chunk to the upload.
struct ChannelWriter(mpsc::Sender<io::Result<Bytes>>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| {
                io::Error::new(io::ErrorKind::BrokenPipe, "docker load stopped reading")
            })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tokio_stream_of(
    mut receiver: mpsc::Receiver<io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}
