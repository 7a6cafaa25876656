//! What an engine can do of what buildopt asks, decided from the handshake before anything is
//! built: which builder to use, and the limits a run should announce.
//!
//! Pure: it reads [`DaemonInfo`] and returns data; the build command says it and acts on it.

use super::{Builder, DaemonInfo, ImageStore};

/// The oldest API that serves BuildKit sessions (`POST /session` left experimental in 1.39).
pub const BUILDKIT_MIN_API: (usize, usize) = (1, 39);

/// The builder a run uses and what it should tell people about the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderDecision {
    pub builder: Builder,
    /// Whether images the engine holds may be named as the build's cache sources.
    pub cache_sources: bool,
    /// One line each: a fallback taken, or a limit that changes what the cache can do.
    pub notes: Vec<String>,
}

/// Why BuildKit cannot build on this engine, if it cannot.
pub fn buildkit_unavailable(info: &DaemonInfo) -> Option<String> {
    if info.os != "linux" {
        return Some(format!(
            "BuildKit builds need a Linux engine (this one runs {})",
            info.os
        ));
    }
    if !super::docker::api_at_least(&info.api_version, BUILDKIT_MIN_API) {
        return Some(format!(
            "API {} predates BuildKit sessions (1.{})",
            info.api_version, BUILDKIT_MIN_API.1
        ));
    }
    let major = info
        .server_version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if major == Some(26) && info.image_store == ImageStore::Containerd {
        return Some(
            "Docker 26 with the containerd image store fails BuildKit builds from a streamed \
             context"
                .to_owned(),
        );
    }
    None
}

/// Whether BuildKit on this engine uses the inline cache of an image in the engine's own store
/// (a restored image, or one an earlier build left). Measured on Docker 28.5: the classic store
/// does, the containerd image store does not (moby/buildkit#5242).
pub fn uses_inline_cache_of_stored_images(info: &DaemonInfo) -> bool {
    info.image_store == ImageStore::Classic
}

/// The builder for a run: `requested` when the engine can, else the classic builder with a note
/// when nothing was requested; an error (the one line to print) when BuildKit was requested
/// and the engine cannot. `inline_cache` says whether the run relies on cached images (the
/// inline cache, cache sources).
pub fn choose_builder(
    info: &DaemonInfo,
    requested: Option<Builder>,
    inline_cache: bool,
) -> Result<BuilderDecision, String> {
    let unavailable = buildkit_unavailable(info);
    let builder = match (requested, &unavailable) {
        (Some(Builder::BuildKit), Some(reason)) => {
            return Err(format!("BuildKit was asked for, but {reason}"));
        }
        (Some(builder), _) => builder,
        (None, Some(_)) => Builder::Classic,
        (None, None) => Builder::BuildKit,
    };
    let mut notes = Vec::new();
    if let (None, Some(reason)) = (requested, unavailable) {
        notes.push(format!("building with the classic builder: {reason}"));
    }
    // Docker 28.5's classic builder on the containerd store fails the whole build when a cache
    // source is a loaded image ("failed to restore cached image … failed validation").
    let cache_sources =
        !(builder == Builder::Classic && info.image_store == ImageStore::Containerd);
    if inline_cache && !cache_sources {
        notes.push(
            "the classic builder of the containerd image store fails builds that name a stored \
             image as their cache source: building without cache sources; unchanged images are \
             still reused"
                .to_owned(),
        );
    }
    if builder == Builder::BuildKit && inline_cache && !uses_inline_cache_of_stored_images(info) {
        notes.push(
            "this engine's BuildKit ignores the inline cache of the images it holds (containerd \
             image store, moby/buildkit#5242): a changed image rebuilds every step, restored or \
             not; unchanged images are still reused"
                .to_owned(),
        );
    }
    Ok(BuilderDecision {
        builder,
        cache_sources,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(version: &str, api: &str, store: ImageStore) -> DaemonInfo {
        DaemonInfo {
            address: "unix:///var/run/docker.sock".into(),
            server_version: version.into(),
            api_version: api.into(),
            os: "linux".into(),
            buildkit: true,
            image_store: store,
            storage_driver: "overlay2".into(),
        }
    }

    #[test]
    fn buildkit_is_chosen_where_it_works_and_its_cache_limit_is_said() {
        let classic = engine("28.5.2", "1.51", ImageStore::Classic);
        let decision = choose_builder(&classic, None, true).expect("ok");
        assert_eq!(decision.builder, Builder::BuildKit);
        assert!(decision.notes.is_empty());
        let containerd = engine("28.5.2", "1.51", ImageStore::Containerd);
        let decision = choose_builder(&containerd, None, true).expect("ok");
        assert_eq!(decision.builder, Builder::BuildKit);
        assert_eq!(decision.notes.len(), 1);
        assert!(
            decision.notes[0].contains("inline cache"),
            "{:?}",
            decision.notes
        );
        let no_cache = choose_builder(&containerd, None, false).expect("ok");
        assert!(no_cache.notes.is_empty(), "no cache, nothing lost");
        let classic_builder =
            choose_builder(&containerd, Some(Builder::Classic), true).expect("ok");
        assert!(!classic_builder.cache_sources);
        assert!(
            classic_builder.notes[0].contains("cache source"),
            "{classic_builder:?}"
        );
        let on_classic_store = choose_builder(&classic, Some(Builder::Classic), true).expect("ok");
        assert!(on_classic_store.cache_sources && on_classic_store.notes.is_empty());
    }

    #[test]
    fn without_buildkit_a_run_falls_back_or_stops_with_the_reason() {
        let old = engine("18.09.1", "1.38", ImageStore::Classic);
        let decision = choose_builder(&old, None, true).expect("fallback");
        assert_eq!(decision.builder, Builder::Classic);
        assert!(
            decision.notes[0].contains("API 1.38"),
            "{:?}",
            decision.notes
        );
        let error = choose_builder(&old, Some(Builder::BuildKit), true).expect_err("refused");
        assert!(
            error.contains("BuildKit was asked for, but API 1.38"),
            "{error}"
        );
        let docker26 = engine("26.1.5+dfsg1", "1.45", ImageStore::Containerd);
        assert!(buildkit_unavailable(&docker26).is_some());
        let docker26_classic = engine("26.1.5", "1.45", ImageStore::Classic);
        assert!(buildkit_unavailable(&docker26_classic).is_none());
        let mut windows = engine("28.5.2", "1.51", ImageStore::Classic);
        windows.os = "windows".into();
        assert!(
            buildkit_unavailable(&windows)
                .expect("reason")
                .contains("windows")
        );
    }
}
