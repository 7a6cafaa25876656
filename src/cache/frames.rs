//! Archive entries as independent compressed frames, and compressing them ahead of the export.
//!
//! The archive's tar stream is written as a concatenation of compressed frames (zstd) or
//! members (gzip), each holding at most one chunk of one entry ([`FrameCompressor`]), then one
//! for the tar's end. Decoders read concatenated frames as one stream, so the format is
//! unchanged for readers, but a blob's entry no longer depends on what came before it, and the
//! chunks of one entry compress on every core. That lets [`FrameWorker`] write each blob a
//! `cache export --image` saves into the archive file while the other `docker save` streams
//! still run, after a head left free for the manifest, which is only known once the saves end;
//! the export then fills the head with the manifest and padding that decoders skip
//! ([`padding_frames`]) and appends what is still missing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use super::archive::{Compression, regular_file_header, tar_padding};
use super::digest::Digest;

/// Each frame holds at most this much of the tar stream: small enough that a few chunks in
/// flight stay far below the memory bound, large enough that restarting the 2 MiB zstd window
/// per frame costs little (measured on the cache benchmark's image set: 0.2% larger than one
/// zstd stream).
const CHUNK: usize = 2 << 20;
const ZSTD_LEVEL: i32 = 3;
const GZIP_LEVEL: u32 = 6;
const BLOCK: u64 = 512;

/// Compresses archive entries. An entry's tar stream (header, bytes, padding) is cut into
/// chunks of [`CHUNK`] bytes from its start, and each chunk becomes one independent frame
/// (zstd) or member (gzip), compressed on one thread with one function. Chunks of a large entry
/// go to a pool of threads and come back in order, so both zstd and gzip use every core, memory
/// stays at a few chunks per thread, and the bytes of a frame depend only on its chunk.
#[derive(Debug)]
pub struct FrameCompressor {
    inline: ChunkEncoder,
    pool: Option<Pool>,
    spare: Spare,
}

impl FrameCompressor {
    /// `threads` threads for entries larger than one chunk (0 or 1: all on the calling thread).
    pub fn new(compression: Compression, threads: u32) -> io::Result<Self> {
        let pool = if threads > 1 {
            Some(Pool::start(compression, threads as usize)?)
        } else {
            None
        };
        Ok(Self {
            inline: ChunkEncoder::new(compression)?,
            pool,
            spare: Spare::default(),
        })
    }

    /// The compression it writes.
    pub fn compression(&self) -> Compression {
        self.inline.compression
    }

    /// Writes one tar entry (ustar header, `size` bytes of `data`, zero padding) as frames.
    /// Fails if `data` ends early.
    pub fn write_entry(
        &mut self,
        out: &mut dyn Write,
        name: &str,
        size: u64,
        data: &mut dyn Read,
    ) -> io::Result<()> {
        let header = regular_file_header(tar::Header::new_ustar(), name, size)?;
        let mut counted = Counted {
            inner: data.take(size),
            count: 0,
        };
        let mut stream = header
            .as_bytes()
            .chain(&mut counted)
            .chain(io::repeat(0).take(tar_padding(size)));
        let spare = &mut self.spare;
        match &mut self.pool {
            Some(pool) if BLOCK + size > CHUNK as u64 => pool.compress(&mut stream, out, spare)?,
            _ => compress_inline(&mut self.inline, &mut stream, out, spare)?,
        }
        if counted.count != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name} ended after {} of {size} bytes", counted.count),
            ));
        }
        Ok(())
    }

    /// Writes the end of the tar (two zero blocks) as one frame.
    pub fn write_end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let zeros = [0u8; 2 * BLOCK as usize];
        let mut frame = self.spare.frame();
        self.inline.compress_into(&zeros, &mut frame)?;
        out.write_all(&frame)
    }
}

fn compress_inline(
    encoder: &mut ChunkEncoder,
    stream: &mut dyn Read,
    out: &mut dyn Write,
    spare: &mut Spare,
) -> io::Result<()> {
    let (mut chunk, mut frame) = (spare.chunk(), spare.frame());
    let outcome = loop {
        let len = match read_chunk(stream, &mut chunk) {
            Ok(0) => break Ok(()),
            Ok(len) => len,
            Err(e) => break Err(e),
        };
        if let Err(e) = encoder
            .compress_into(&chunk[..len], &mut frame)
            .and_then(|()| out.write_all(&frame))
        {
            break Err(e);
        }
    };
    spare.keep(chunk, frame);
    outcome
}

/// Fills `chunk` from `stream`; returns how many bytes it holds (fewer than its length only at
/// the stream's end).
fn read_chunk(stream: &mut dyn Read, chunk: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < chunk.len() {
        match stream.read(&mut chunk[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Counts what passes, so a short blob is noticed.
struct Counted<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// Chunk and frame buffers kept for the next chunks: a compressor allocates (and the kernel
/// zeroes) a few of each once, rather than two fresh ones per chunk, which the allocator then
/// hands back to the kernel.
#[derive(Debug, Default)]
struct Spare {
    chunks: Vec<Vec<u8>>,
    frames: Vec<Vec<u8>>,
}

impl Spare {
    /// A chunk buffer, [`CHUNK`] bytes long.
    fn chunk(&mut self) -> Vec<u8> {
        self.chunks.pop().unwrap_or_else(|| vec![0; CHUNK])
    }

    fn frame(&mut self) -> Vec<u8> {
        self.frames.pop().unwrap_or_default()
    }

    fn keep(&mut self, chunk: Vec<u8>, frame: Vec<u8>) {
        self.chunks.push(chunk);
        self.frames.push(frame);
    }
}

/// Compresses one chunk into one frame.
struct ChunkEncoder {
    compression: Compression,
    zstd: zstd::bulk::Compressor<'static>,
}

impl std::fmt::Debug for ChunkEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkEncoder")
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

impl ChunkEncoder {
    fn new(compression: Compression) -> io::Result<Self> {
        Ok(Self {
            compression,
            zstd: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
        })
    }

    /// Replaces what `frame` holds with `chunk`'s frame.
    fn compress_into(&mut self, chunk: &[u8], frame: &mut Vec<u8>) -> io::Result<()> {
        frame.clear();
        match self.compression {
            Compression::Zstd => {
                frame.reserve(zstd::zstd_safe::compress_bound(chunk.len()));
                self.zstd.compress_to_buffer(chunk, frame)?;
            }
            Compression::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    std::mem::take(frame),
                    flate2::Compression::new(GZIP_LEVEL),
                );
                encoder.write_all(chunk)?;
                *frame = encoder.finish()?;
            }
        }
        Ok(())
    }
}

/// A chunk to compress: its place in its entry, its buffer and how much of it is filled, and
/// the buffer its frame goes into. Both buffers come back to be used again.
#[derive(Debug)]
struct ChunkJob {
    place: u64,
    chunk: Vec<u8>,
    len: usize,
    frame: Vec<u8>,
}

/// Threads that compress chunks; jobs come back with their frames, or an error.
#[derive(Debug)]
struct Pool {
    jobs: Option<mpsc::Sender<ChunkJob>>,
    results: mpsc::Receiver<(ChunkJob, io::Result<()>)>,
    threads: Vec<JoinHandle<()>>,
    /// Chunks handed out at once: enough that no thread waits for the writer.
    in_flight: usize,
}

impl Pool {
    fn start(compression: Compression, threads: usize) -> io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<ChunkJob>();
        let queue = Arc::new(Mutex::new(queue));
        let (done, results) = mpsc::channel();
        let mut handles = Vec::with_capacity(threads);
        for _ in 0..threads {
            let mut encoder = ChunkEncoder::new(compression)?;
            let (queue, done) = (Arc::clone(&queue), done.clone());
            handles.push(std::thread::spawn(move || {
                loop {
                    let job = queue
                        .lock()
                        .map_err(|_| ())
                        .and_then(|q| q.recv().map_err(|_| ()));
                    let Ok(mut job) = job else {
                        return;
                    };
                    let outcome = encoder.compress_into(&job.chunk[..job.len], &mut job.frame);
                    if done.send((job, outcome)).is_err() {
                        return;
                    }
                }
            }));
        }
        Ok(Self {
            jobs: Some(jobs),
            results,
            threads: handles,
            in_flight: 2 * threads,
        })
    }

    /// Compresses all of `stream`, writing the frames to `out` in order. Every chunk handed out
    /// is collected before returning, even after an error, so the next entry starts clean.
    fn compress(
        &mut self,
        stream: &mut dyn Read,
        out: &mut dyn Write,
        spare: &mut Spare,
    ) -> io::Result<()> {
        let jobs = self.jobs.as_ref().expect("present until drop");
        let mut outcome = Ok(());
        let (mut sent, mut received, mut next) = (0u64, 0u64, 0u64);
        let mut finished: BTreeMap<u64, ChunkJob> = BTreeMap::new();
        let mut more = true;
        loop {
            while more && outcome.is_ok() && sent - received < self.in_flight as u64 {
                let mut chunk = spare.chunk();
                match read_chunk(stream, &mut chunk) {
                    Ok(0) => {
                        more = false;
                        spare.chunks.push(chunk);
                    }
                    Ok(len) => {
                        let frame = spare.frame();
                        let job = ChunkJob {
                            place: sent,
                            chunk,
                            len,
                            frame,
                        };
                        jobs.send(job).map_err(|_| pool_gone())?;
                        sent += 1;
                    }
                    Err(e) => {
                        outcome = Err(e);
                        spare.chunks.push(chunk);
                    }
                }
            }
            if received == sent {
                return outcome;
            }
            let (job, compressed) = self.results.recv().map_err(|_| pool_gone())?;
            received += 1;
            match (compressed, &outcome) {
                (Ok(()), Ok(())) => {
                    finished.insert(job.place, job);
                }
                (Err(e), Ok(())) => {
                    outcome = Err(e);
                    spare.keep(job.chunk, job.frame);
                }
                _ => spare.keep(job.chunk, job.frame),
            }
            while outcome.is_ok() {
                let Some(job) = finished.remove(&next) else {
                    break;
                };
                outcome = out.write_all(&job.frame);
                spare.keep(job.chunk, job.frame);
                next += 1;
            }
        }
    }
}

fn pool_gone() -> io::Error {
    io::Error::other("a compression thread ended unexpectedly")
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Where blob entries live in the archive.
pub const BLOB_PREFIX: &str = "blobs/sha256/";

/// The archive entry name of a blob.
pub fn blob_entry_name(digest: &Digest) -> String {
    format!("{BLOB_PREFIX}{}", digest.hex())
}

/// Blob entries a [`FrameWorker`] wrote into the archive file ahead of the export, after a
/// head left free for the manifest.
#[derive(Debug)]
pub struct PlacedFrames {
    pub compression: Compression,
    /// The bytes at the start of the file left for the manifest's frames and padding.
    pub reserved: u64,
    /// Where the placed frames end: the next frame goes here.
    pub end: u64,
    /// The blobs placed, with the size each entry was made for.
    pub blobs: BTreeMap<Digest, u64>,
}

/// A blob to compress: its digest, size and open bytes.
type Job = (Digest, u64, File);

/// A thread that compresses blobs' archive entries straight into the archive file while the
/// saves that stage them still run, and starts the file's fsync after each.
///
/// Its failures cost speed, never correctness: after an error the placed frames are given up
/// ([`FrameWorker::finish`] says `None`) and the export writes the whole file again.
#[derive(Debug)]
pub struct FrameWorker {
    sender: mpsc::Sender<Job>,
    thread: JoinHandle<io::Result<PlacedFrames>>,
}

impl FrameWorker {
    /// Starts writing frames into `file` at offset `reserved`. `threads` compress each entry.
    pub fn start(file: File, reserved: u64, compression: Compression, threads: u32) -> Self {
        let (sender, receiver) = mpsc::channel::<Job>();
        let thread = std::thread::spawn(move || {
            place_frames(file, reserved, compression, threads, receiver)
        });
        Self { sender, thread }
    }

    /// A sender to hand blobs to the worker from other threads.
    pub fn submitter(&self) -> FrameSubmitter {
        FrameSubmitter(self.sender.clone())
    }

    /// Waits until every submitted blob is placed; `None` when the worker failed.
    pub fn finish(self) -> Option<PlacedFrames> {
        drop(self.sender);
        self.thread.join().ok().and_then(Result::ok)
    }
}

fn place_frames(
    mut file: File,
    reserved: u64,
    compression: Compression,
    threads: u32,
    receiver: mpsc::Receiver<Job>,
) -> io::Result<PlacedFrames> {
    let mut compressor = FrameCompressor::new(compression, threads)?;
    file.seek(SeekFrom::Start(reserved))?;
    let mut out = io::BufWriter::with_capacity(1 << 20, file);
    let mut blobs = BTreeMap::new();
    let mut syncs = Vec::new();
    for (digest, size, mut blob) in receiver {
        if blobs.contains_key(&digest) {
            continue;
        }
        compressor.write_entry(&mut out, &blob_entry_name(&digest), size, &mut blob)?;
        out.flush()?;
        blobs.insert(digest, size);
        // Written back while the saves go on, so the export's final fsync finds little to do.
        let synced = out.get_ref().try_clone()?;
        syncs.push(std::thread::spawn(move || synced.sync_data()));
    }
    for sync in syncs {
        let _ = sync.join();
    }
    let end = out.stream_position()?;
    Ok(PlacedFrames {
        compression,
        reserved,
        end,
        blobs,
    })
}

/// Hands blobs to a [`FrameWorker`].
#[derive(Debug, Clone)]
pub struct FrameSubmitter(mpsc::Sender<Job>);

impl FrameSubmitter {
    /// Queues `file` (the `size` bytes of `digest`) for compression; a worker that is gone
    /// only means the export compresses it later.
    pub fn submit(&self, digest: Digest, size: u64, file: File) {
        let _ = self.0.send((digest, size, file));
    }
}

/// The largest gzip member that decodes to nothing: header, a 65,535-byte extra field, an
/// empty deflate block, trailer.
const GZIP_PAD_MAX: u64 = 22 + 65_535;
/// The smallest: the extra field holds one subfield header and nothing else.
const GZIP_PAD_MIN: u64 = 22 + 4;
/// The first skippable frame magic number, little-endian (zstd format, section "Skippable
/// Frames"): decoders skip such frames whole.
const ZSTD_SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// Bytes that fill exactly `len` bytes and decode to nothing: one zstd skippable frame, or empty
/// gzip members whose extra field carries the padding. `None` when `len` is too small for one.
pub fn padding_frames(compression: Compression, len: u64) -> Option<Vec<u8>> {
    if len == 0 {
        return Some(Vec::new());
    }
    match compression {
        Compression::Zstd => {
            let content = u32::try_from(len.checked_sub(8)?).ok()?;
            let mut frame = Vec::with_capacity(len as usize);
            frame.extend_from_slice(&ZSTD_SKIPPABLE_MAGIC.to_le_bytes());
            frame.extend_from_slice(&content.to_le_bytes());
            frame.resize(len as usize, 0);
            Some(frame)
        }
        Compression::Gzip => {
            if len < GZIP_PAD_MIN {
                return None;
            }
            let members = len.div_ceil(GZIP_PAD_MAX);
            let mut padding = Vec::with_capacity(len as usize);
            for n in 0..members {
                let size = len / members + u64::from(n < len % members);
                padding.extend_from_slice(&empty_gzip_member(size));
            }
            Some(padding)
        }
    }
}

/// A gzip member of exactly `size` bytes (26..=65,557) with no content (RFC 1952).
fn empty_gzip_member(size: u64) -> Vec<u8> {
    let extra = (size - 22) as u16;
    let mut member = vec![0x1f, 0x8b, 8, 0x04, 0, 0, 0, 0, 0, 0xff];
    member.extend_from_slice(&extra.to_le_bytes());
    // One subfield, 'B' 'P' (buildopt padding), holding zeros.
    member.extend_from_slice(b"BP");
    member.extend_from_slice(&(extra - 4).to_le_bytes());
    member.resize(member.len() + usize::from(extra - 4), 0);
    // An empty final block with fixed codes, then CRC-32 and size of nothing.
    member.extend_from_slice(&[0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0]);
    member
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(archive: &[u8], compression: Compression) -> Vec<(String, Vec<u8>)> {
        let decoded: Box<dyn Read> = match compression {
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(archive).expect("zstd")),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(archive)),
        };
        let mut tar = tar::Archive::new(decoded);
        tar.entries()
            .expect("entries")
            .map(|entry| {
                let mut entry = entry.expect("entry");
                let name = entry.path().expect("path").display().to_string();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).expect("read");
                (name, bytes)
            })
            .collect()
    }

    fn large() -> Vec<u8> {
        (0..(3 * CHUNK + 1000)).map(|i| (i % 251) as u8).collect()
    }

    fn archive_of(compression: Compression, threads: u32, files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut archive = Vec::new();
        let mut compressor = FrameCompressor::new(compression, threads).expect("compressor");
        for (name, bytes) in files {
            let size = bytes.len() as u64;
            compressor
                .write_entry(&mut archive, name, size, &mut &**bytes)
                .expect("entry");
        }
        compressor.write_end(&mut archive).expect("end");
        archive
    }

    /// The decompressed sizes of the zstd frames in `archive`.
    fn zstd_frames(mut archive: &[u8]) -> Vec<u64> {
        let mut sizes = Vec::new();
        while !archive.is_empty() {
            let length = zstd::zstd_safe::find_frame_compressed_size(archive).expect("frame");
            let content = zstd::zstd_safe::get_frame_content_size(archive)
                .expect("header")
                .expect("size recorded");
            sizes.push(content);
            archive = &archive[length..];
        }
        sizes
    }

    #[test]
    fn concatenated_frames_read_as_one_tar_whatever_the_threads() {
        let large = large();
        // Chunk buffers go round between entries: shorter entries after longer ones must not
        // pick up what an earlier chunk left in a buffer.
        let shorter: Vec<u8> = (0..CHUNK + 17).map(|i| (i % 13) as u8 + 1).collect();
        let files: [(&str, &[u8]); 5] = [
            ("a", b"first"),
            ("b", &large),
            ("c", b""),
            ("d", &shorter),
            ("e", b"last"),
        ];
        for compression in [Compression::Zstd, Compression::Gzip] {
            let archive = archive_of(compression, 3, &files);
            let read = entries(&archive, compression);
            let expected: Vec<(String, Vec<u8>)> = files
                .iter()
                .map(|(name, bytes)| (name.to_string(), bytes.to_vec()))
                .collect();
            assert!(read == expected, "{compression:?}: entries differ");
            assert_eq!(
                archive,
                archive_of(compression, 0, &files),
                "{compression:?}: a frame's bytes depend only on its chunk"
            );
        }
    }

    #[test]
    fn a_large_entry_is_cut_into_chunks_from_its_start() {
        let large = large();
        let archive = archive_of(Compression::Zstd, 2, &[("small", b"x"), ("b", &large)]);
        let chunk = CHUNK as u64;
        // The small entry; the large one's header, bytes and padding in chunks; the tar's end.
        let stream = 512 + large.len() as u64 + tar_padding(large.len() as u64);
        assert_eq!(
            zstd_frames(&archive),
            [1024, chunk, chunk, chunk, stream - 3 * chunk, 1024]
        );
    }

    #[test]
    fn an_entry_shorter_than_its_size_is_an_error() {
        for threads in [0, 2] {
            let mut compressor = FrameCompressor::new(Compression::Zstd, threads).expect("new");
            let claimed = 3 * CHUNK as u64;
            let error = compressor
                .write_entry(&mut Vec::new(), "x", claimed, &mut &large()[..CHUNK + 5])
                .expect_err("short");
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
            let expected = format!("after {} of {claimed} bytes", CHUNK + 5);
            assert!(error.to_string().contains(&expected), "{error}");
        }
    }

    /// Accepts `room` bytes, then fails.
    struct FullDisk {
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if buf.len() > self.room {
                return Err(io::Error::other("no space left"));
            }
            self.room -= buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_write_leaves_the_pool_ready_for_the_next_entry() {
        let large = large();
        let size = large.len() as u64;
        let mut compressor = FrameCompressor::new(Compression::Zstd, 2).expect("compressor");
        let mut full = FullDisk { room: 100 };
        let error = compressor
            .write_entry(&mut full, "b", size, &mut large.as_slice())
            .expect_err("full");
        assert!(error.to_string().contains("no space left"), "{error}");
        // No chunk of the failed entry leaks into the next one.
        let mut archive = Vec::new();
        compressor
            .write_entry(&mut archive, "b", size, &mut large.as_slice())
            .expect("again");
        compressor.write_end(&mut archive).expect("end");
        assert_eq!(archive, archive_of(Compression::Zstd, 0, &[("b", &large)]));
    }

    #[test]
    fn the_worker_places_each_blob_once_after_the_reserved_head() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = b"layer bytes".repeat(1000);
        let blob = dir.path().join("blob");
        std::fs::write(&blob, &bytes).expect("blob");
        let digest = Digest::of(&bytes);
        let size = bytes.len() as u64;
        let archive = File::create(dir.path().join("archive")).expect("archive");
        let worker = FrameWorker::start(
            archive.try_clone().expect("clone"),
            100,
            Compression::Zstd,
            2,
        );
        for _ in 0..2 {
            let file = File::open(&blob).expect("open");
            worker.submitter().submit(digest.clone(), size, file);
        }
        let placed = worker.finish().expect("placed");
        let mut expected = vec![0u8; 100];
        let mut compressor = FrameCompressor::new(Compression::Zstd, 0).expect("compressor");
        compressor
            .write_entry(
                &mut expected,
                &blob_entry_name(&digest),
                size,
                &mut bytes.as_slice(),
            )
            .expect("entry");
        assert_eq!(placed.blobs, BTreeMap::from([(digest, size)]));
        assert_eq!((placed.reserved, placed.end), (100, expected.len() as u64));
        assert_eq!(
            std::fs::read(dir.path().join("archive")).expect("read"),
            expected
        );
    }

    #[test]
    fn a_blob_shorter_than_claimed_gives_up_the_placed_frames() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blob = dir.path().join("blob");
        std::fs::write(&blob, b"short").expect("blob");
        let archive = File::create(dir.path().join("archive")).expect("archive");
        let worker = FrameWorker::start(archive, 0, Compression::Gzip, 2);
        let file = File::open(&blob).expect("open");
        worker.submitter().submit(Digest::of(b"short"), 6, file);
        assert!(worker.finish().is_none());
    }

    #[test]
    fn padding_fills_exactly_and_decodes_to_nothing() {
        let mut tail = Vec::new();
        let mut compressor = FrameCompressor::new(Compression::Zstd, 0).expect("compressor");
        compressor.write_end(&mut tail).expect("end");
        for compression in [Compression::Zstd, Compression::Gzip] {
            let mut compressor = FrameCompressor::new(compression, 0).expect("compressor");
            for len in [0, 26, 27, 1000, 65_557, 65_558, 200_000] {
                let padding = padding_frames(compression, len).expect("room");
                assert_eq!(padding.len() as u64, len, "{compression:?} {len}");
                let mut archive = Vec::new();
                compressor
                    .write_entry(&mut archive, "a", 1, &mut &b"x"[..])
                    .expect("entry");
                archive.extend_from_slice(&padding);
                compressor.write_end(&mut archive).expect("end");
                let read = entries(&archive, compression);
                assert_eq!(
                    read,
                    [("a".to_string(), b"x".to_vec())],
                    "{compression:?} {len}"
                );
            }
        }
        for len in 1..8 {
            assert!(padding_frames(Compression::Zstd, len).is_none(), "{len}");
        }
        for len in 1..GZIP_PAD_MIN {
            assert!(padding_frames(Compression::Gzip, len).is_none(), "{len}");
        }
    }
}
