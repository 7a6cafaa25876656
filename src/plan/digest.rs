//! Inputs digests: one hash per image over everything that can change what it builds.
//!
//! The digest covers the filtered context (path, mode and git object id of every file sent), the
//! Dockerfile, the ignore file, named contexts, extra and global inputs, target, args, platforms,
//! and the digests of its internal parents. Equal digests mean an equal build, whatever the commit
//! range, which is what lets later runs skip a build whose result already exists.

use crate::git::TreeEntry;
use crate::workspace::dockerignore::{IgnoreRules, PathFilter};
use crate::workspace::{Image, NamedContext, Snapshot, paths};

/// The version of the digest recipe; part of the hash so a recipe change never reuses old images.
const RECIPE: &[u8] = b"buildopt-inputs-v1\0";

/// Hashes one image, given the digests of its parents (in any order) and the global inputs' files.
pub fn inputs_digest(
    image: &Image,
    snapshot: &Snapshot<'_>,
    parent_digests: &[(&str, &str)],
    global_inputs: &[&TreeEntry],
    extra_inputs: Option<&IgnoreRules>,
) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(RECIPE);
    let def = &image.def;
    field(&mut hasher, "dockerfile", &def.dockerfile);
    field(
        &mut hasher,
        "dockerfile-oid",
        snapshot.get(&def.dockerfile).map_or("", |e| e.oid.as_str()),
    );
    if let Some(file) = &image.ignore_file {
        field(
            &mut hasher,
            "ignore-oid",
            snapshot.get(file).map_or("", |e| e.oid.as_str()),
        );
    }
    field(&mut hasher, "target", def.target.as_deref().unwrap_or(""));
    for (key, value) in &def.args {
        field(&mut hasher, "arg", &format!("{key}={value}"));
    }
    for platform in &def.platforms {
        field(&mut hasher, "platform", platform);
    }
    hash_tree(
        &mut hasher,
        "context",
        snapshot,
        &def.context,
        &image.ignore,
    );
    for (name, context) in &def.contexts {
        field(&mut hasher, "named-context", name);
        match context {
            NamedContext::Local(dir) => {
                let empty = IgnoreRules::default();
                let rules = image
                    .context_ignores
                    .get(name)
                    .map_or(&empty, |(_, rules)| rules);
                hash_tree(&mut hasher, "named", snapshot, dir, rules);
            }
            NamedContext::Image(reference)
            | NamedContext::Sibling(reference)
            | NamedContext::Remote(reference) => {
                field(&mut hasher, "named-ref", reference);
            }
        }
    }
    if let Some(rules) = extra_inputs {
        for entry in snapshot
            .entries()
            .iter()
            .filter(|e| rules.is_excluded(&e.path))
        {
            hash_entry(&mut hasher, "input", &entry.path, entry);
        }
    }
    for entry in global_inputs {
        hash_entry(&mut hasher, "global", &entry.path, entry);
    }
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
    snapshot: &Snapshot<'_>,
    dir: &str,
    rules: &IgnoreRules,
) {
    // The filter remembers each folder's verdict, so patterns run about once per path.
    let mut filter = PathFilter::new(rules);
    for entry in snapshot.under(dir) {
        if let Some(rel) = paths::strip_dir(&entry.path, dir)
            && !filter.is_excluded(rel)
        {
            hash_entry(hasher, label, rel, entry);
        }
    }
}

fn hash_entry(hasher: &mut blake3::Hasher, label: &str, path: &str, entry: &TreeEntry) {
    // One update per entry: blake3's per-call overhead dominates for records this small.
    let mut record =
        Vec::with_capacity(label.len() + path.len() + entry.mode.len() + entry.oid.len() + 4);
    for (part, end) in [
        (label, b'\0'),
        (path, b'\0'),
        (entry.mode.as_str(), b'\0'),
        (entry.oid.as_str(), b'\n'),
    ] {
        record.extend_from_slice(part.as_bytes());
        record.push(end);
    }
    hasher.update(&record);
}

/// Length-prefixed so no two different field lists hash alike.
fn field(hasher: &mut blake3::Hasher, label: &str, value: &str) {
    hasher.update(label.as_bytes());
    hasher.update(&(value.len() as u64).to_le_bytes());
    hasher.update(value.as_bytes());
}
