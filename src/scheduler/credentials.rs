//! Registry credentials for `--push`.
//!
//! Owns: finding the user name and password for a registry server. `BUILDOPT_REGISTRY_USER` and
//! `BUILDOPT_REGISTRY_PASSWORD` (both set) apply to every registry and win; else the Docker config
//! file (`$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`) gives them per server, as
//! `auths.<server>.auth` (base64 `user:password`) or `auths.<server>.username`/`password`.
//! Credential helpers (`credsStore`, `credHelpers`) are not run. Passwords never appear in errors
//! or `Debug` output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::engine::RegistryAuth;
use crate::env::Env;
use crate::notify::secret::Secret;
use crate::settings::pipeline::registry_login;

/// Why the credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a Docker config file: {message}")]
    Parse { path: String, message: String },
    /// `auth` is not base64 of `user:password`.
    #[error("{path}: auths.{server}.auth is not base64 of user:password")]
    Decode { path: String, server: String },
}

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
struct Login {
    username: String,
    password: String,
}

/// Every credential known to this run.
#[derive(Default)]
pub struct Credentials {
    /// From the environment, for every server.
    everywhere: Option<Login>,
    /// From the Docker config file, by server host (`127.0.0.1:5000`, `ghcr.io`).
    by_server: BTreeMap<String, Login>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("from_environment", &self.everywhere.is_some())
            .field("servers", &self.by_server.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, ConfigAuth>,
}

#[derive(Deserialize)]
struct ConfigAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl Credentials {
    /// Reads the environment and, when it exists, the Docker config file.
    pub fn load(env: &Env) -> Result<Self, CredentialsError> {
        let everywhere = registry_login(env).map(|login| Login {
            username: login.username,
            password: login.password,
        });
        let by_server = match config_path(env).filter(|p| p.is_file()) {
            Some(path) => {
                let text =
                    std::fs::read_to_string(&path).map_err(|source| CredentialsError::Read {
                        path: path.display().to_string(),
                        source,
                    })?;
                parse_config(&text, &path)?
            }
            None => BTreeMap::new(),
        };
        Ok(Self {
            everywhere,
            by_server,
        })
    }

    /// Every password known, for the run's redactor.
    pub fn passwords(&self) -> Vec<Secret> {
        self.everywhere
            .iter()
            .chain(self.by_server.values())
            .map(|login| Secret::new(login.password.clone()))
            .collect()
    }

    /// The credentials for `server` (a registry host), when known.
    pub fn for_server(&self, server: &str) -> Option<RegistryAuth> {
        let login = self
            .everywhere
            .as_ref()
            .or_else(|| self.by_server.get(server))?;
        Some(RegistryAuth {
            username: login.username.clone(),
            password: login.password.clone(),
            server: server.to_owned(),
        })
    }
}

fn config_path(env: &Env) -> Option<PathBuf> {
    match env.get("DOCKER_CONFIG") {
        Some(dir) => Some(Path::new(dir).join("config.json")),
        None => env
            .get("HOME")
            .map(|home| Path::new(home).join(".docker/config.json")),
    }
}

fn parse_config(text: &str, path: &Path) -> Result<BTreeMap<String, Login>, CredentialsError> {
    let config: ConfigFile =
        serde_json::from_str(text).map_err(|error| CredentialsError::Parse {
            path: path.display().to_string(),
            message: error.to_string(),
        })?;
    let mut logins = BTreeMap::new();
    for (key, auth) in config.auths {
        let login = match (auth.auth, auth.username, auth.password) {
            (Some(encoded), _, _) if !encoded.is_empty() => {
                decode(&encoded).ok_or_else(|| CredentialsError::Decode {
                    path: path.display().to_string(),
                    server: key.clone(),
                })?
            }
            (_, Some(username), Some(password)) => Login { username, password },
            _ => continue,
        };
        logins.insert(server_host(&key).to_owned(), login);
    }
    Ok(logins)
}

fn decode(encoded: &str) -> Option<Login> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Login {
        username: username.to_owned(),
        password: password.to_owned(),
    })
}

/// The host of a config key: `https://index.docker.io/v1/` → `index.docker.io`.
fn server_host(key: &str) -> &str {
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    without_scheme.split('/').next().unwrap_or(without_scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "canary-pa55word";

    fn env_with_config(text: &str) -> (tempfile::TempDir, Env) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.json"), text).expect("write");
        let env = Env::from_pairs([("DOCKER_CONFIG", dir.path().display().to_string())]);
        (dir, env)
    }

    #[test]
    fn reads_base64_auth_and_plain_fields_by_host() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("ci:{CANARY}"));
        let (_dir, env) = env_with_config(&format!(
            r#"{{"auths": {{
                "https://127.0.0.1:5000/v2/": {{"auth": "{encoded}"}},
                "ghcr.io": {{"username": "bot", "password": "token"}},
                "empty.example": {{}}
            }}}}"#
        ));
        let credentials = Credentials::load(&env).expect("load");
        let local = credentials.for_server("127.0.0.1:5000").expect("local");
        assert_eq!(
            (local.username.as_str(), local.password.as_str()),
            ("ci", CANARY)
        );
        assert_eq!(
            credentials.for_server("ghcr.io").map(|a| a.username),
            Some("bot".to_owned())
        );
        assert_eq!(credentials.for_server("empty.example"), None);
        assert!(!format!("{credentials:?} {local:?}").contains(CANARY));
    }

    #[test]
    fn the_environment_wins_for_every_server() {
        let (_dir, _) = env_with_config(r#"{"auths": {"ghcr.io": {"auth": "Ym90OnRva2Vu"}}}"#);
        let env = Env::from_pairs([
            ("DOCKER_CONFIG", _dir.path().display().to_string()),
            ("BUILDOPT_REGISTRY_USER", "env-user".into()),
            ("BUILDOPT_REGISTRY_PASSWORD", CANARY.into()),
        ]);
        let credentials = Credentials::load(&env).expect("load");
        for server in ["ghcr.io", "registry.example:443"] {
            let auth = credentials.for_server(server).expect("auth");
            assert_eq!(auth.username, "env-user");
            assert_eq!(auth.server, server);
        }
    }

    #[test]
    fn home_config_is_used_without_docker_config_and_a_missing_file_is_no_credentials() {
        let home = tempfile::tempdir().expect("tempdir");
        let env = Env::from_pairs([("HOME", home.path().display().to_string())]);
        assert_eq!(
            Credentials::load(&env).expect("load").for_server("ghcr.io"),
            None
        );
        std::fs::create_dir(home.path().join(".docker")).expect("mkdir");
        std::fs::write(
            home.path().join(".docker/config.json"),
            r#"{"auths": {"ghcr.io": {"auth": "Ym90OnRva2Vu"}}}"#,
        )
        .expect("write");
        let auth = Credentials::load(&env)
            .expect("load")
            .for_server("ghcr.io")
            .expect("auth");
        assert_eq!(
            (auth.username.as_str(), auth.password.as_str()),
            ("bot", "token")
        );
    }

    #[test]
    fn bad_files_are_errors_that_do_not_show_the_secret() {
        let (_dir, env) = env_with_config("{not json");
        assert!(matches!(
            Credentials::load(&env),
            Err(CredentialsError::Parse { .. })
        ));
        let (_dir, env) = env_with_config(r#"{"auths": {"ghcr.io": {"auth": "%%%"}}}"#);
        let error = Credentials::load(&env).expect_err("bad base64");
        assert!(error.to_string().contains("auths.ghcr.io.auth"), "{error}");
    }
}
