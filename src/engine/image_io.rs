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

use super::{DockerEngine, EngineError};

/// Chunks buffered between the tar writer and the upload (each at most [`CHUNK`] bytes).
const IN_FLIGHT_CHUNKS: usize = 8;
const CHUNK: usize = 1 << 20;
/// `docker save` bytes cross to the blocking thread in pieces of up to this size. The daemon
/// flushes each 32 KiB it writes as its own HTTP chunk; handing those over one by one woke the
/// reading thread (and the connection's task) some 10,000 times per 300 MB.
const SAVE_PIECE: usize = 1 << 20;
const SAVE_PIECES_IN_FLIGHT: usize = 2;

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
        let mut reader = read_in_pieces(Box::pin(self.long_client().export_images(&names)));
        tokio::task::spawn_blocking(move || consume(&mut reader))
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

/// Starts gathering `body` into pieces on the runtime (call within its context) and returns
/// the reader of those pieces, for a blocking thread.
fn read_in_pieces<S>(body: S) -> PieceReader
where
    S: futures_util::Stream<Item = Result<Bytes, bollard::errors::Error>> + Send + Unpin + 'static,
{
    let (pieces, received) = mpsc::channel(SAVE_PIECES_IN_FLIGHT);
    let (spare, returned) = std::sync::mpsc::channel();
    tokio::spawn(gather_pieces(body, pieces, returned));
    PieceReader {
        pieces: received,
        piece: Vec::new(),
        read: 0,
        spare,
    }
}

/// Gathers the `docker save` body into pieces of [`SAVE_PIECE`] bytes (buffers come back
/// through `returned` to be filled again) and sends them to the reading thread; an error ends
/// the stream after it is sent. Stops when the reader is gone.
async fn gather_pieces<S>(
    mut body: S,
    pieces: mpsc::Sender<io::Result<Vec<u8>>>,
    returned: std::sync::mpsc::Receiver<Vec<u8>>,
) where
    S: futures_util::Stream<Item = Result<Bytes, bollard::errors::Error>> + Unpin,
{
    let fresh = |returned: &std::sync::mpsc::Receiver<Vec<u8>>| {
        let mut piece = returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(SAVE_PIECE));
        piece.clear();
        piece
    };
    let mut piece = fresh(&returned);
    while let Some(next) = body.next().await {
        match next {
            Ok(bytes) => {
                if !piece.is_empty() && piece.len() + bytes.len() > SAVE_PIECE {
                    let full = std::mem::replace(&mut piece, fresh(&returned));
                    if pieces.send(Ok(full)).await.is_err() {
                        return;
                    }
                }
                piece.extend_from_slice(&bytes);
            }
            Err(error) => {
                let _ = pieces.send(Err(io::Error::other(error))).await;
                return;
            }
        }
    }
    if !piece.is_empty() {
        let _ = pieces.send(Ok(piece)).await;
    }
}

/// Reads the pieces [`gather_pieces`] sends, on a blocking thread, and hands each used buffer
/// back.
struct PieceReader {
    pieces: mpsc::Receiver<io::Result<Vec<u8>>>,
    piece: Vec<u8>,
    /// How much of `piece` was read.
    read: usize,
    spare: std::sync::mpsc::Sender<Vec<u8>>,
}

impl Read for PieceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.read == self.piece.len() {
            let next = match self.pieces.blocking_recv() {
                None => return Ok(0),
                Some(next) => next?,
            };
            let used = std::mem::replace(&mut self.piece, next);
            if used.capacity() > 0 {
                let _ = self.spare.send(used);
            }
            self.read = 0;
        }
        let n = buf.len().min(self.piece.len() - self.read);
        buf[..n].copy_from_slice(&self.piece[self.read..self.read + n]);
        self.read += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Body = Vec<Result<Bytes, bollard::errors::Error>>;

    /// Reads everything `body` gives through a gatherer and a piece reader, as `save_images`
    /// does; returns the bytes read, or the error, and how many pieces crossed over.
    fn read_through(body: Body) -> (io::Result<Vec<u8>>, usize) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut reader = {
            let _inside = runtime.enter();
            read_in_pieces(futures_util::stream::iter(body))
        };
        let mut all = Vec::new();
        let mut buf = vec![0u8; 100_000];
        let mut crossed = 0;
        let outcome = loop {
            let before = reader.piece.as_ptr();
            match reader.read(&mut buf) {
                Ok(0) => break Ok(all),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(e) => break Err(e),
            }
            crossed += usize::from(reader.piece.as_ptr() != before);
        };
        (outcome, crossed)
    }

    fn chunks_of(bytes: &[u8], size: usize) -> Body {
        bytes
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect()
    }

    #[test]
    fn small_http_chunks_cross_in_large_pieces_unchanged() {
        let bytes: Vec<u8> = (0..3 * SAVE_PIECE + 12_345)
            .map(|i| (i % 241) as u8)
            .collect();
        let (read, crossed) = read_through(chunks_of(&bytes, 32 * 1024));
        assert!(read.expect("read") == bytes, "bytes changed on the way");
        assert_eq!(
            crossed, 4,
            "three full pieces of 32 KiB chunks and the rest"
        );
    }

    #[test]
    fn an_empty_body_reads_as_the_end() {
        let (read, _) = read_through(Vec::new());
        assert!(read.expect("read").is_empty());
    }

    #[test]
    fn a_failed_body_fails_the_read() {
        let mut body = chunks_of(&[7u8; 5000], 1000);
        body.push(Err(bollard::errors::Error::IOError {
            err: io::Error::new(io::ErrorKind::ConnectionReset, "daemon went away"),
        }));
        body.extend(chunks_of(&[9u8; 10], 10));
        let (read, _) = read_through(body);
        let error = read.expect_err("the body failed");
        assert!(error.to_string().contains("daemon went away"), "{error}");
    }

    #[test]
    fn the_gatherer_stops_when_the_reader_is_gone() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let (pieces, received) = mpsc::channel(SAVE_PIECES_IN_FLIGHT);
        let (_spare, returned) = std::sync::mpsc::channel();
        drop(received);
        // An endless body: only the reader's going can end the gatherer.
        let endless = futures_util::stream::repeat_with(|| Ok(Bytes::from(vec![1u8; 64 * 1024])));
        let gatherer = runtime.spawn(gather_pieces(endless, pieces, returned));
        runtime
            .block_on(async {
                tokio::time::timeout(std::time::Duration::from_secs(30), gatherer).await
            })
            .expect("the gatherer ended")
            .expect("no panic");
    }
}
