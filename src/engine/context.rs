//! Streams a build context to the daemon as a tar, file by file.
//!
//! A blocking task writes the tar into a bounded channel in [`CHUNK_SIZE`] pieces; the request
//! body reads from the other end. At most a few chunks are in memory at once, whatever the
//! context's size. Entries keep their modes and modification times; owners are reset to 0:0 as the
//! docker CLI does; symlinks are sent as symlinks (never followed); parent directories are
//! implied (the daemon creates them).

use std::fs::{self, File, Metadata};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{ContextFile, EngineError};

/// Size of one body chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;

/// Chunks buffered between the tar writer and the request body.
const CHANNEL_CHUNKS: usize = 4;

/// Starts writing `files` (then `extra`, a generated file: name and bytes) as a tar; returns the
/// byte stream for the request body and the writer task.
///
/// The task ends with `Ok` also when the body was dropped (the request ended early: that is the
/// request's error to report, not the context's). A file that cannot be read ends it with
/// [`EngineError::Io`] and makes the stream yield an error, which aborts the upload.
/// Must be called within a tokio runtime.
pub fn stream_context(
    files: Vec<ContextFile>,
    extra: Option<(String, Vec<u8>)>,
) -> (
    impl Stream<Item = io::Result<Bytes>> + Send + 'static,
    JoinHandle<Result<(), EngineError>>,
) {
    let (sender, receiver) = mpsc::channel(CHANNEL_CHUNKS);
    let task = tokio::task::spawn_blocking(move || {
        let body_closed = Arc::new(AtomicBool::new(false));
        let writer = ChannelWriter {
            sender: sender.clone(),
            buffer: Vec::with_capacity(CHUNK_SIZE),
            body_closed: body_closed.clone(),
        };
        match write_tar(writer, &files, extra) {
            Err(_) if body_closed.load(Ordering::Relaxed) => Ok(()),
            Err(error) => {
                let message = error.to_string();
                // The receiver may be gone already; then nobody needs to hear about it.
                let _ = sender.blocking_send(Err(io::Error::other(message)));
                Err(error)
            }
            Ok(()) => Ok(()),
        }
    });
    let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    (body, task)
}

fn write_tar(
    writer: ChannelWriter,
    files: &[ContextFile],
    extra: Option<(String, Vec<u8>)>,
) -> Result<(), EngineError> {
    let mut tar = tar::Builder::new(writer);
    for file in files {
        append_file(&mut tar, file)?;
    }
    if let Some((name, contents)) = extra {
        append_generated(&mut tar, &name, &contents)?;
    }
    let mut writer = tar.into_inner().map_err(|e| io_error("<context tar>", e))?;
    writer.flush().map_err(|e| io_error("<context tar>", e))
}

fn io_error(path: &str, source: io::Error) -> EngineError {
    EngineError::Io {
        path: path.to_owned(),
        source,
    }
}

fn append_file(
    tar: &mut tar::Builder<ChannelWriter>,
    file: &ContextFile,
) -> Result<(), EngineError> {
    let shown = file.abs_path.display().to_string();
    let metadata = fs::symlink_metadata(&file.abs_path).map_err(|e| io_error(&shown, e))?;
    let mut header = header_for(&metadata);
    let kind = metadata.file_type();
    let written = if kind.is_symlink() {
        let target = fs::read_link(&file.abs_path).map_err(|e| io_error(&shown, e))?;
        tar.append_link(&mut header, &file.rel_path, target)
    } else if kind.is_dir() {
        tar.append_data(&mut header, &file.rel_path, io::empty())
    } else if kind.is_file() {
        let contents = File::open(&file.abs_path).map_err(|e| io_error(&shown, e))?;
        tar.append_data(&mut header, &file.rel_path, contents)
    } else {
        let unsupported = io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file, directory or symlink",
        );
        return Err(io_error(&shown, unsupported));
    };
    written.map_err(|e| io_error(&format!("{shown} (as {} in the context)", file.rel_path), e))
}

/// A header with the file's type, mode, size and mtime, owned by root.
fn header_for(metadata: &Metadata) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(metadata, tar::HeaderMode::Complete);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn append_generated(
    tar: &mut tar::Builder<ChannelWriter>,
    name: &str,
    contents: &[u8],
) -> Result<(), EngineError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(contents.len() as u64);
    tar.append_data(&mut header, Path::new(name), contents)
        .map_err(|e| io_error(name, e))
}

/// A `Write` that hands full chunks to the request body through a bounded channel.
struct ChannelWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
    /// Set when the body's receiver is gone, so the writer's error is not the context's fault.
    body_closed: Arc<AtomicBool>,
}

impl ChannelWriter {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK_SIZE),
        ));
        self.sender.blocking_send(Ok(chunk)).map_err(|_| {
            self.body_closed.store(true, Ordering::Relaxed);
            io::Error::new(io::ErrorKind::BrokenPipe, "the request body was dropped")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK_SIZE - self.buffer.len();
        let taken = data.len().min(room);
        self.buffer.extend_from_slice(&data[..taken]);
        if self.buffer.len() == CHUNK_SIZE {
            self.send_buffer()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::collections::BTreeMap;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::path::PathBuf;

    fn file(dir: &Path, rel: &str) -> ContextFile {
        ContextFile {
            rel_path: rel.to_owned(),
            abs_path: dir.join(rel),
        }
    }

    /// Every entry of the streamed tar: path → (type, mode, link target, contents).
    async fn entries(
        files: Vec<ContextFile>,
        extra: Option<(String, Vec<u8>)>,
    ) -> (
        BTreeMap<String, (tar::EntryType, u32, Option<PathBuf>, Vec<u8>)>,
        usize,
    ) {
        let (body, task) = stream_context(files, extra);
        let chunks: Vec<Bytes> = body.map(|c| c.expect("chunk")).collect().await;
        task.await.expect("join").expect("tar written");
        let largest = chunks.iter().map(Bytes::len).max().unwrap_or(0);
        let bytes: Vec<u8> = chunks.concat();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut found = BTreeMap::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            let header = entry.header().clone();
            let mut contents = Vec::new();
            io::Read::read_to_end(&mut entry, &mut contents).expect("contents");
            let link = entry.link_name().expect("link").map(|l| l.into_owned());
            assert_eq!(
                (header.uid().expect("uid"), header.gid().expect("gid")),
                (0, 0)
            );
            found.insert(
                path,
                (
                    header.entry_type(),
                    header.mode().expect("mode") & 0o7777,
                    link,
                    contents,
                ),
            );
        }
        (found, largest)
    }

    #[tokio::test]
    async fn files_modes_symlinks_dirs_and_odd_names_survive_the_stream() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        fs::create_dir_all(root.join("src/deep/er")).expect("dirs");
        fs::create_dir_all(root.join("empty dir")).expect("dirs");
        fs::write(root.join("src/deep/er/app.sh"), "#!/bin/sh\necho hi\n").expect("write");
        fs::set_permissions(
            root.join("src/deep/er/app.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        fs::write(root.join("src/with space ünïcödé.txt"), "text").expect("write");
        fs::set_permissions(
            root.join("src/with space ünïcödé.txt"),
            fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        symlink("deep/er/app.sh", root.join("src/link")).expect("symlink");
        let long = format!("src/{}.txt", "n".repeat(150));
        fs::write(root.join(&long), "long").expect("write");
        let files = vec![
            file(root, "src/deep/er/app.sh"),
            file(root, "src/with space ünïcödé.txt"),
            file(root, "src/link"),
            file(root, "empty dir"),
            file(root, &long),
        ];
        let (found, _) = entries(
            files,
            Some((".buildopt.Dockerfile".into(), b"FROM scratch\n".to_vec())),
        )
        .await;
        let app = &found["src/deep/er/app.sh"];
        assert_eq!(
            (app.0, app.1, app.3.as_slice()),
            (tar::EntryType::Regular, 0o755, &b"#!/bin/sh\necho hi\n"[..])
        );
        assert_eq!(found["src/with space ünïcödé.txt"].1, 0o600);
        assert_eq!(found["src/with space ünïcödé.txt"].3, b"text");
        let link = &found["src/link"];
        assert_eq!(
            (link.0, link.2.as_deref()),
            (tar::EntryType::Symlink, Some(Path::new("deep/er/app.sh")))
        );
        assert_eq!(found["empty dir"].0, tar::EntryType::Directory);
        assert_eq!(found[&long].3, b"long");
        assert_eq!(found[".buildopt.Dockerfile"].3, b"FROM scratch\n");
        assert_eq!(
            found.len(),
            6,
            "parents are implied, not added: {:?}",
            found.keys()
        );
    }

    #[tokio::test]
    async fn a_large_file_is_sent_in_bounded_chunks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data: Vec<u8> = (0..3_000_000u32).map(|n| (n % 251) as u8).collect();
        fs::write(dir.path().join("big.bin"), &data).expect("write");
        let (found, largest) = entries(vec![file(dir.path(), "big.bin")], None).await;
        assert_eq!(found["big.bin"].3, data);
        assert_eq!(largest, CHUNK_SIZE);
    }

    #[tokio::test]
    async fn a_missing_file_fails_the_task_and_the_stream() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (body, task) = stream_context(vec![file(dir.path(), "gone.txt")], None);
        let chunks: Vec<io::Result<Bytes>> = body.collect().await;
        assert!(
            chunks.last().is_some_and(Result::is_err),
            "the body must end in an error"
        );
        let error = task.await.expect("join").expect_err("missing file");
        assert!(
            matches!(&error, EngineError::Io { path, .. } if path.ends_with("gone.txt")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn dropping_the_body_is_not_a_context_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("big.bin"), vec![7u8; 2_000_000]).expect("write");
        let (body, task) = stream_context(vec![file(dir.path(), "big.bin")], None);
        drop(body);
        task.await
            .expect("join")
            .expect("a dropped body ends the task quietly");
    }
}
