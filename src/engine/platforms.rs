//! The platforms of an image index in the daemon (the containerd image store): which there are
//! (`GET /images/NAME/json?manifests=1`, API 1.47+) and each one's size (`?platform=`, API
//! 1.49+), neither of which bollard asks for.
//!
//! The parsing is pure and unit-tested on the daemon's answers; `socket.rs` sends the requests.

use serde_json::Value;

use super::EngineError;
use super::PlatformImage;
use super::socket::{DaemonSocket, get_json};

/// The API version the platform query of an image inspection needs.
pub const PLATFORM_INSPECT_API: (usize, usize) = (1, 49);

/// Whether an inspected image is an image index (its descriptor says so).
pub(super) fn is_index(media_type: Option<&str>) -> bool {
    matches!(
        media_type,
        Some(
            "application/vnd.oci.image.index.v1+json"
                | "application/vnd.docker.distribution.manifest.list.v2+json"
        )
    )
}

/// Each platform image of the index `reference`, sized; attestation manifests are left out.
/// Through a TLS address, which `socket.rs` cannot reach, the list stays empty: the image is
/// still what it is, only its report lacks the platforms.
pub(super) async fn platform_images(
    socket: &DaemonSocket,
    reference: &str,
) -> Result<Vec<PlatformImage>, EngineError> {
    if matches!(socket, DaemonSocket::Tls(_)) {
        return Ok(Vec::new());
    }
    let path = format!("/images/{}/json?manifests=1", encode(reference));
    let Some(index) = get_json(socket, &path).await? else {
        return Ok(Vec::new());
    };
    let mut images = Vec::new();
    for (platform, manifest, oci) in image_manifests(&index) {
        let path = format!(
            "/images/{}/json?platform={}",
            encode(reference),
            encode(&oci)
        );
        let size = get_json(socket, &path)
            .await?
            .and_then(|image| image["Size"].as_u64())
            .unwrap_or(0);
        images.push(PlatformImage {
            platform,
            manifest,
            size,
        });
    }
    Ok(images)
}

/// The image manifests an inspection with `manifests=1` lists: platform (`os/arch[/variant]`),
/// manifest digest and the platform as the `platform` query wants it (OCI JSON).
fn image_manifests(inspect: &Value) -> Vec<(String, String, String)> {
    let Some(manifests) = inspect["Manifests"].as_array() else {
        return Vec::new();
    };
    manifests
        .iter()
        .filter(|m| m["Kind"] == "image")
        .filter_map(|m| {
            let platform = &m["Descriptor"]["platform"];
            let name = platform_name(platform)?;
            Some((name, m["ID"].as_str()?.to_owned(), platform.to_string()))
        })
        .collect()
}

fn platform_name(platform: &Value) -> Option<String> {
    let os = platform["os"].as_str()?;
    let architecture = platform["architecture"].as_str()?;
    Some(match platform["variant"].as_str() {
        Some(variant) if !variant.is_empty() => format!("{os}/{architecture}/{variant}"),
        _ => format!("{os}/{architecture}"),
    })
}

/// Percent-encodes a path segment or query value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_lists_its_image_manifests_without_attestations() {
        // As Docker 28.5 answers `GET /images/NAME/json?manifests=1` on the containerd store.
        let inspect = serde_json::json!({
            "Id": "sha256:85f4",
            "Manifests": [
                {"ID": "sha256:1bb6", "Kind": "image", "Available": true,
                 "Descriptor": {"platform": {"architecture": "amd64", "os": "linux"}}},
                {"ID": "sha256:dd23", "Kind": "image", "Available": true,
                 "Descriptor": {"platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}},
                {"ID": "sha256:a77e", "Kind": "attestation", "Available": true,
                 "Descriptor": {"platform": {"architecture": "unknown", "os": "unknown"}}}
            ]
        });
        let manifests = image_manifests(&inspect);
        let names: Vec<(&str, &str)> = manifests
            .iter()
            .map(|(p, m, _)| (p.as_str(), m.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("linux/amd64", "sha256:1bb6"),
                ("linux/arm64/v8", "sha256:dd23")
            ]
        );
        assert_eq!(manifests[0].2, r#"{"architecture":"amd64","os":"linux"}"#);
        assert!(image_manifests(&serde_json::json!({"Id": "sha256:1"})).is_empty());
    }

    #[test]
    fn references_and_platforms_are_encoded_for_the_url() {
        assert_eq!(
            encode("127.0.0.1:5000/team/app:1"),
            "127.0.0.1%3A5000%2Fteam%2Fapp%3A1"
        );
        assert_eq!(encode(r#"{"os":"linux"}"#), "%7B%22os%22%3A%22linux%22%7D");
    }

    #[test]
    fn only_index_media_types_are_indexes() {
        assert!(is_index(Some("application/vnd.oci.image.index.v1+json")));
        assert!(is_index(Some(
            "application/vnd.docker.distribution.manifest.list.v2+json"
        )));
        assert!(!is_index(Some(
            "application/vnd.oci.image.manifest.v1+json"
        )));
        assert!(!is_index(None));
    }
}
