//! The one registry write the daemon has no call for: a manifest list (an image index in the
//! registry) made of per-platform images already pushed, for engines whose image store holds
//! one platform per image (the classic store).
//!
//! Speaks the registry's HTTP API (distribution's `/v2/`): `GET` of each platform's manifest
//! (its digest and size are those of the bytes received, its media type the answer's), then
//! `PUT` of the list under the tag. Authentication as
//! registries ask for it: basic credentials, or the bearer token a `WWW-Authenticate: Bearer`
//! challenge points at, fetched with them. Loopback registries (`127.0.0.1:5000`, `localhost`)
//! are plain HTTP, as the daemon treats them; any other is HTTPS.

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{EngineError, RegistryAuth};

const MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const PLATFORM_MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

/// One platform's manifest in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    platform: String,
    media_type: String,
    digest: String,
    size: u64,
}

/// Puts a manifest list under `repo:tag` holding, for each `(platform, tag)`, the manifest the
/// registry has under that tag of `repo` (pushed before); returns the list's digest.
pub(super) async fn push_manifest_list(
    repo: &str,
    tag: &str,
    platforms: &[(String, String)],
    auth: Option<&RegistryAuth>,
) -> Result<String, EngineError> {
    let reference = format!("{repo}:{tag}");
    let refused = |message: String| EngineError::Push {
        reference: reference.clone(),
        message,
    };
    let (host, name) = repo
        .split_once('/')
        .ok_or_else(|| refused("the repository names no registry".into()))?;
    let registry = Registry {
        client: Client::builder()
            .build()
            .map_err(|e| refused(e.to_string()))?,
        base: format!("{}://{host}/v2/{name}", scheme(host)),
        scope: format!("repository:{name}:pull,push"),
        auth,
    };
    let mut entries = Vec::new();
    for (platform, platform_tag) in platforms {
        let response = registry
            .send(Method::GET, &format!("manifests/{platform_tag}"), |r| {
                r.header(ACCEPT, PLATFORM_MANIFESTS)
            })
            .await
            .map_err(&refused)?;
        let media_type = header(response.headers(), "content-type").map_err(&refused)?;
        let bytes = response.bytes().await.map_err(|e| refused(e.to_string()))?;
        entries.push(Entry {
            platform: platform.clone(),
            media_type,
            digest: sha256(&bytes),
            size: bytes.len() as u64,
        });
    }
    let body = list(&entries).to_string();
    let response = registry
        .send(Method::PUT, &format!("manifests/{tag}"), |r| {
            r.header(CONTENT_TYPE, MANIFEST_LIST).body(body.clone())
        })
        .await
        .map_err(&refused)?;
    header(response.headers(), "docker-content-digest").map_err(&refused)
}

/// Loopback registries speak plain HTTP (as the daemon allows them without configuration).
fn scheme(host: &str) -> &'static str {
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let loopback = name == "localhost" || name.starts_with("127.") || name == "[::1]";
    if loopback { "http" } else { "https" }
}

struct Registry<'a> {
    client: Client,
    /// `http[s]://host/v2/<name>`.
    base: String,
    scope: String,
    auth: Option<&'a RegistryAuth>,
}

impl Registry<'_> {
    /// Sends `METHOD base/path` (`build` adds headers and body) with basic credentials, and
    /// again with a bearer token when the registry asks for one; any answer but 2xx is an error.
    async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response, String> {
        let url = format!("{}/{path}", self.base);
        let request = || build(self.client.request(method.clone(), &url));
        let basic = |r: RequestBuilder| match self.auth {
            Some(auth) => r.basic_auth(&auth.username, Some(&auth.password)),
            None => r,
        };
        let mut response = basic(request()).send().await.map_err(|e| e.to_string())?;
        if response.status() == StatusCode::UNAUTHORIZED
            && let Some(challenge) = bearer_challenge(response.headers())
        {
            let token = self.token(&challenge).await?;
            response = request()
                .header(AUTHORIZATION, format!("Bearer {token}"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
        }
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let detail = response.text().await.unwrap_or_default();
        Err(format!("{method} {url}: {status} {}", detail.trim()))
    }

    /// The token the challenge's realm gives for this repository, with the basic credentials.
    async fn token(&self, challenge: &Challenge) -> Result<String, String> {
        let mut query = vec![("scope", self.scope.as_str())];
        if let Some(service) = &challenge.service {
            query.push(("service", service));
        }
        let mut request = self.client.get(&challenge.realm).query(&query);
        if let Some(auth) = self.auth {
            request = request.basic_auth(&auth.username, Some(&auth.password));
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|e| e.to_string())?;
        answer["token"]
            .as_str()
            .or_else(|| answer["access_token"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "the token service {} gave no token ({status})",
                    challenge.realm
                )
            })
    }
}

/// A `WWW-Authenticate: Bearer realm="…",service="…"` challenge.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    realm: String,
    service: Option<String>,
}

fn bearer_challenge(headers: &HeaderMap) -> Option<Challenge> {
    let value = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
    let params = value.strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut service = None;
    for pair in params.split(',') {
        let (key, value) = pair.trim().split_once('=')?;
        let value = value.trim_matches('"').to_owned();
        match key {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    Some(Challenge {
        realm: realm?,
        service,
    })
}

fn header(headers: &HeaderMap, name: &str) -> Result<String, String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("the registry's answer has no {name}"))
}

/// `sha256:<hex>` of `bytes`: a manifest's digest.
fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The manifest list of `entries`.
fn list(entries: &[Entry]) -> Value {
    let manifests: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut parts = e.platform.split('/');
            let (os, architecture) = (parts.next(), parts.next());
            let mut platform = json!({"os": os, "architecture": architecture});
            if let Some(variant) = parts.next() {
                platform["variant"] = json!(variant);
            }
            json!({
                "mediaType": e.media_type,
                "digest": e.digest,
                "size": e.size,
                "platform": platform,
            })
        })
        .collect();
    json!({"schemaVersion": 2, "mediaType": MANIFEST_LIST, "manifests": manifests})
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::notify::testserver::{FakeServer, Recorded, Reply};
    use std::sync::{Arc, Mutex};

    /// A registry that wants a bearer token from its token service for every call, and its
    /// host (`127.0.0.1:PORT`).
    fn token_registry() -> (FakeServer, String) {
        let base = Arc::new(Mutex::new(String::new()));
        let realm = base.clone();
        let server = FakeServer::start(move |request: &Recorded| {
            let challenge = format!(
                "Bearer realm=\"{}/token\",service=\"fake\"",
                realm.lock().expect("lock")
            );
            if request.path() == "/token" {
                let basic = request.header("authorization").unwrap_or_default();
                return match (basic.starts_with("Basic "), request.query("service")) {
                    (true, Some("fake")) => Reply::json(200, json!({"token": "tok"})),
                    _ => Reply::status(401),
                };
            }
            if request.header("authorization") != Some("Bearer tok") {
                return Reply::status(401).header("www-authenticate", &challenge);
            }
            match (request.line().as_str(), request.path()) {
                (line, _) if line.starts_with("PUT ") => {
                    Reply::status(201).header("docker-content-digest", "sha256:list")
                }
                (_, path) => Reply::text(200, path).header(
                    "content-type",
                    "application/vnd.docker.distribution.manifest.v2+json",
                ),
            }
        });
        *base.lock().expect("lock") = server.url();
        let host = server.url().trim_start_matches("http://").to_owned();
        (server, host)
    }

    #[tokio::test]
    async fn a_list_is_put_with_the_bearer_token_the_registry_asks_for() {
        let (server, host) = token_registry();
        let auth = RegistryAuth {
            username: "u".into(),
            password: "p".into(),
            server: host.clone(),
        };
        let platforms = [
            ("linux/amd64".to_owned(), "1-linux-amd64".to_owned()),
            ("linux/arm64".to_owned(), "1-linux-arm64".to_owned()),
        ];
        let digest = push_manifest_list(&format!("{host}/t/app"), "1", &platforms, Some(&auth))
            .await
            .expect("pushed");
        assert_eq!(digest, "sha256:list");
        let requests = server.requests();
        let put = requests
            .iter()
            .find(|r| r.line().starts_with("PUT "))
            .expect("a PUT");
        assert_eq!(put.path(), "/v2/t/app/manifests/1");
        assert_eq!(put.header("content-type"), Some(MANIFEST_LIST));
        let list = put.json();
        // The platform manifests' bytes are their paths here: digest and size are theirs.
        let amd64 = "/v2/t/app/manifests/1-linux-amd64";
        assert_eq!(list["manifests"][0]["size"], amd64.len());
        assert_eq!(list["manifests"][0]["digest"], sha256(amd64.as_bytes()));
        assert_eq!(list["manifests"][1]["platform"]["architecture"], "arm64");
    }

    #[tokio::test]
    async fn a_refused_list_names_the_reference_and_the_registrys_answer() {
        let (server, host) = token_registry();
        let platforms = [("linux/amd64".to_owned(), "1-linux-amd64".to_owned())];
        // No credentials: the token service refuses.
        let error = push_manifest_list(&format!("{host}/t/app"), "1", &platforms, None)
            .await
            .expect_err("refused");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("push of {host}/t/app:1 failed:")),
            "{text}"
        );
        drop(server);
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        assert_eq!(scheme("127.0.0.1:5000"), "http");
        assert_eq!(scheme("localhost:5000"), "http");
        assert_eq!(scheme("localhost"), "http");
        assert_eq!(scheme("ghcr.io"), "https");
        assert_eq!(scheme("registry.example.com:5000"), "https");
    }

    #[test]
    fn a_bearer_challenge_gives_realm_and_service() {
        let mut headers = HeaderMap::new();
        headers.insert(
            WWW_AUTHENTICATE,
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:a/b:pull""#
                .parse()
                .expect("header"),
        );
        assert_eq!(
            bearer_challenge(&headers),
            Some(Challenge {
                realm: "https://ghcr.io/token".into(),
                service: Some("ghcr.io".into()),
            })
        );
        headers.insert(
            WWW_AUTHENTICATE,
            r#"Basic realm="x""#.parse().expect("header"),
        );
        assert_eq!(bearer_challenge(&headers), None);
    }

    #[test]
    fn the_list_names_each_platform_manifest() {
        let entries = [
            Entry {
                platform: "linux/amd64".into(),
                media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
                digest: "sha256:aa".into(),
                size: 525,
            },
            Entry {
                platform: "linux/arm64/v8".into(),
                media_type: "application/vnd.docker.distribution.manifest.v2+json".into(),
                digest: "sha256:bb".into(),
                size: 526,
            },
        ];
        let list = list(&entries);
        assert_eq!(list["mediaType"], MANIFEST_LIST);
        assert_eq!(
            list["manifests"][0]["platform"],
            json!({"os": "linux", "architecture": "amd64"})
        );
        assert_eq!(
            list["manifests"][1]["platform"],
            json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
        );
        assert_eq!(list["manifests"][1]["digest"], "sha256:bb");
        assert_eq!(list["manifests"][1]["size"], 526);
    }
}
