//! Inputs digests: one hash per image over everything that can change what it builds.
//!
//! The digest covers the filtered context (path, mode and git object id of every file sent), the
//! Dockerfile, the ignore file, named contexts, extra and global inputs, target, args, platforms,
//! and the digests of its internal parents. Equal digests mean an equal build, whatever the commit
//! range, which is what lets later runs skip a build whose result already exists.

use crate::git::TreeEntry;
use crate::workspace::dockerignore::{IgnoreRules, PathFilter};
use crate::workspace::{Image, Listing, NamedContext, paths};

/// The version of the digest recipe; part of the hash so a recipe change never reuses old images.
const RECIPE: &[u8] = b"buildopt-inputs-v1\0";

/// Hashes one image's own inputs: everything but its parents' digests, which come last (see
/// [`finish`]), so images can be hashed this far in any order, on any thread.
pub fn own_inputs(
    image: &Image,
    listing: Listing<'_>,
    global_inputs: &[&TreeEntry],
    extra_inputs: Option<&IgnoreRules>,
) -> blake3::Hasher {
    let mut hasher = blake3::Hasher::new();
    hasher.update(RECIPE);
    let def = &image.def;
    field(&mut hasher, "dockerfile", &def.dockerfile);
    field(
        &mut hasher,
        "dockerfile-oid",
        listing.get(&def.dockerfile).map_or("", TreeEntry::oid),
    );
    if let Some(file) = &image.ignore_file {
        field(
            &mut hasher,
            "ignore-oid",
            listing.get(file).map_or("", TreeEntry::oid),
        );
    }
    field(&mut hasher, "target", def.target.as_deref().unwrap_or(""));
    for (key, value) in &def.args {
        field(&mut hasher, "arg", &format!("{key}={value}"));
    }
    for platform in &def.platforms {
        field(&mut hasher, "platform", platform);
    }
    hash_tree(&mut hasher, "context", listing, &def.context, &image.ignore);
    for (name, context) in &def.contexts {
        field(&mut hasher, "named-context", name);
        match context {
            NamedContext::Local(dir) => {
                let empty = IgnoreRules::default();
                let rules = image
                    .context_ignores
                    .get(name)
                    .map_or(&empty, |(_, rules)| rules);
                hash_tree(&mut hasher, "named", listing, dir, rules);
            }
            NamedContext::Image(reference)
            | NamedContext::Sibling(reference)
            | NamedContext::Remote(reference) => {
                field(&mut hasher, "named-ref", reference);
            }
        }
    }
    let mut record = Vec::new();
    if let Some(rules) = extra_inputs {
        for entry in listing
            .entries()
            .iter()
            .filter(|e| rules.is_excluded(&e.path))
        {
            hash_entry(&mut hasher, &mut record, "input", &entry.path, entry);
        }
    }
    for entry in global_inputs {
        hash_entry(&mut hasher, &mut record, "global", &entry.path, entry);
    }
    hasher
}

/// The inputs digest: [`own_inputs`] followed by the digests of the image's parents (in any
/// order).
pub fn finish(mut hasher: blake3::Hasher, parent_digests: &[(&str, &str)]) -> String {
    let mut parents = parent_digests.to_vec();
    parents.sort_unstable();
    for (name, digest) in parents {
        field(&mut hasher, "parent", &format!("{name}={digest}"));
    }
    format!("blake3:{}", hasher.finalize().to_hex())
}

fn hash_tree(
    hasher: &mut blake3::Hasher,
    label: &str,
    listing: Listing<'_>,
    dir: &str,
    rules: &IgnoreRules,
) {
    // The filter remembers each folder's verdict, so patterns run about once per path.
    let mut filter = PathFilter::new(rules);
    let mut record = Vec::new();
    for entry in listing.under(dir) {
        if let Some(rel) = paths::strip_dir(&entry.path, dir)
            && !filter.is_excluded(rel)
        {
            hash_entry(hasher, &mut record, label, rel, entry);
        }
    }
}

/// Hashes one file in one update (blake3's per-call overhead dominates for records this
/// small), built in `record`, a buffer the caller reuses from file to file.
fn hash_entry(
    hasher: &mut blake3::Hasher,
    record: &mut Vec<u8>,
    label: &str,
    path: &str,
    entry: &TreeEntry,
) {
    record.clear();
    for (part, end) in [
        (label, b'\0'),
        (path, b'\0'),
        (entry.mode(), b'\0'),
        (entry.oid(), b'\n'),
    ] {
        record.extend_from_slice(part.as_bytes());
        record.push(end);
    }
    hasher.update(record);
}

/// Length-prefixed so no two different field lists hash alike.
fn field(hasher: &mut blake3::Hasher, label: &str, value: &str) {
    hasher.update(label.as_bytes());
    hasher.update(&(value.len() as u64).to_le_bytes());
    hasher.update(value.as_bytes());
}
