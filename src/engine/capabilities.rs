//! What an engine can do of what buildopt asks, decided from the handshake before anything is
//! built: which builder to use, whether it builds images for several platforms, and the limits
//! a run should announce; and, after a failed step, whether the engine could not run the
//! platform the step was for.
//!
//! Pure: it reads [`DaemonInfo`] (or the failure) and returns data; the build command says it
//! and acts on it.

use super::progress::buildkit_position;
use super::{Builder, DaemonInfo, EngineError, ImageStore};

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

/// Why this engine cannot build one image for several platforms, if it cannot: only the
/// containerd image store holds an image index (BuildKit's `docker` exporter on the classic
/// store exports one platform).
pub fn multi_platform_unavailable(info: &DaemonInfo) -> Option<String> {
    if info.image_store != ImageStore::Containerd {
        return Some(format!(
            "the engine keeps images in the classic image store ({}), which holds one platform \
             per image: enable the containerd image store (\"features\": \
             {{\"containerd-snapshotter\": true}} in daemon.json, the default of fresh Docker 29 \
             installations)",
            info.storage_driver
        ));
    }
    if !super::docker::api_at_least(&info.api_version, super::platforms::PLATFORM_INSPECT_API) {
        return Some(format!(
            "API {} predates the per-platform image inspection (1.{})",
            info.api_version,
            super::platforms::PLATFORM_INSPECT_API.1
        ));
    }
    None
}

/// What the kernel says when it has no handler for a program's machine code.
const EXEC_FORMAT_ERROR: &str = "exec format error";

/// A failed step that could not start because the daemon's host cannot run programs of the
/// platform it builds for (no binfmt_misc handler, such as QEMU user emulation, for it), said in
/// one line instead of the raw exec error; `None` for any other failure. `platforms` are the
/// build's, for when the step's name does not say which one failed.
pub fn unrunnable_platform(error: &EngineError, platforms: &[String]) -> Option<EngineError> {
    let EngineError::BuildFailed {
        step,
        line,
        log_tail,
        message,
    } = error
    else {
        return None;
    };
    let raw = std::iter::once(message).chain(log_tail);
    if !raw.into_iter().any(|text| text.contains(EXEC_FORMAT_ERROR)) {
        return None;
    }
    let platform = step
        .as_deref()
        .and_then(buildkit_position)
        .and_then(|p| p.platform)
        .or_else(|| (platforms.len() == 1).then(|| platforms[0].clone()))?;
    Some(EngineError::BuildFailed {
        step: step.clone(),
        line: *line,
        log_tail: Vec::new(),
        message: format!(
            "the daemon cannot run {platform} steps: its host has no emulator for {platform} \
             (binfmt_misc, e.g. QEMU user emulation); COPY-only steps and FROM \
             --platform=$BUILDPLATFORM stages need none"
        ),
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
            arch: "amd64".into(),
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

    #[test]
    fn several_platforms_need_the_containerd_store() {
        let classic = engine("28.5.2", "1.51", ImageStore::Classic);
        let reason = multi_platform_unavailable(&classic).expect("refused");
        assert!(reason.contains("containerd image store"), "{reason}");
        let containerd = engine("28.5.2", "1.51", ImageStore::Containerd);
        assert_eq!(multi_platform_unavailable(&containerd), None);
        let old = engine("27.0.0", "1.46", ImageStore::Containerd);
        assert!(multi_platform_unavailable(&old).is_some());
    }

    fn failed(step: &str, log: &str) -> EngineError {
        EngineError::BuildFailed {
            step: Some(step.into()),
            line: Some(2),
            log_tail: vec![log.into()],
            message: "process \"/bin/sh -c true\" did not complete successfully: exit code: 1"
                .into(),
        }
    }

    #[test]
    fn an_exec_format_error_names_the_platform_the_daemon_cannot_run() {
        // As Docker 28.5 fails a RUN step for arm64 on an amd64 host without QEMU.
        let raw = failed(
            "[linux/arm64 2/2] RUN true",
            "exec /bin/sh: exec format error",
        );
        let said = unrunnable_platform(&raw, &["linux/amd64".into(), "linux/arm64".into()])
            .expect("recognised");
        let EngineError::BuildFailed {
            step,
            line,
            log_tail,
            message,
        } = said
        else {
            panic!("{said:?}");
        };
        assert_eq!(step.as_deref(), Some("[linux/arm64 2/2] RUN true"));
        assert_eq!(line, Some(2));
        assert!(log_tail.is_empty());
        assert!(
            message.starts_with("the daemon cannot run linux/arm64 steps:"),
            "{message}"
        );
        assert!(!message.contains('\n'));
        // One platform: its steps carry no prefix, the request says which.
        let single = failed("[2/2] RUN true", "exec /bin/sh: exec format error");
        let said = unrunnable_platform(&single, &["linux/s390x".into()]).expect("recognised");
        assert!(
            said.to_string().contains("cannot run linux/s390x steps"),
            "{said}"
        );
        // Any other failure is left as it is.
        let other = failed("[2/2] RUN false", "");
        assert!(unrunnable_platform(&other, &["linux/arm64".into()]).is_none());
    }
}
