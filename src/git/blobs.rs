//! Batched blob reads through one `git cat-file --batch` process.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use super::{Git, GitError};
use crate::workspace::BlobSource;

impl BlobSource for Git {
    fn read_blobs(&self, oids: &[&str]) -> Result<Vec<Vec<u8>>, GitError> {
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        let mut child = self
            .command(&["cat-file", "--batch"], true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(GitError::NotFound)?;
        let request: String = oids.iter().map(|oid| format!("{oid}\n")).collect();
        let mut stdin = child.stdin.take().ok_or_else(|| failed("no stdin"))?;
        // Write from a thread: git answers while we write, and a full pipe would block both sides.
        let writer = std::thread::spawn(move || stdin.write_all(request.as_bytes()));
        let stdout = child.stdout.take().ok_or_else(|| failed("no stdout"))?;
        let blobs = read_answers(BufReader::new(stdout), oids);
        let write_result = writer
            .join()
            .map_err(|_| failed("writer thread panicked"))?;
        let status = child.wait().map_err(GitError::NotFound)?;
        let blobs = blobs?;
        write_result.map_err(|err| failed(&err.to_string()))?;
        if !status.success() {
            return Err(failed(&format!("exited with {status}")));
        }
        Ok(blobs)
    }
}

fn read_answers(mut out: impl BufRead, oids: &[&str]) -> Result<Vec<Vec<u8>>, GitError> {
    let mut blobs = Vec::with_capacity(oids.len());
    let mut header = String::new();
    for oid in oids {
        header.clear();
        out.read_line(&mut header)
            .map_err(|err| failed(&err.to_string()))?;
        // "<oid> <type> <size>" or "<oid> missing".
        let mut parts = header.split_whitespace();
        let size = match (parts.next(), parts.next(), parts.next()) {
            (Some(_), Some(_), Some(size)) => size
                .parse::<usize>()
                .map_err(|_| failed(&format!("bad header {header:?}")))?,
            _ => return Err(failed(&format!("object {oid} is missing"))),
        };
        let mut blob = vec![0; size + 1];
        out.read_exact(&mut blob)
            .map_err(|err| failed(&err.to_string()))?;
        blob.pop();
        blobs.push(blob);
    }
    Ok(blobs)
}

fn failed(message: &str) -> GitError {
    GitError::Command {
        args: "cat-file --batch".into(),
        stderr: message.into(),
    }
}
