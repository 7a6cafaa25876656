//! The repositories the build and job benchmarks build: the example monorepo and a generated one,
//! each copied or written into a folder and committed.

use std::path::Path;
use std::process::Command;

/// How many images the generated repository has.
pub const GENERATED_IMAGES: usize = 20;

/// One image as the baseline builds it: `docker build -f DOCKERFILE -t TAG [--build-arg] CONTEXT`.
pub struct Plain {
    pub tag: String,
    pub context: String,
    pub dockerfile: String,
    pub args: Vec<String>,
}

/// The example repository with its images renamed under `prefix`, committed.
pub fn example_repo(repo: &Path, prefix: &str) -> Vec<Plain> {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monorepo");
    copy_dir(&example, repo);
    let config = std::fs::read_to_string(repo.join("buildopt.toml")).expect("config");
    let mut renamed = String::new();
    for line in config.lines() {
        renamed.push_str(line);
        renamed.push('\n');
        if let Some(name) = line
            .strip_prefix("[images.")
            .and_then(|l| l.strip_suffix(']'))
        {
            renamed.push_str(&format!("image = \"{prefix}/{name}\"\ntags = []\n"));
        }
    }
    // `tags` may appear twice now; keep the first (ours) by dropping the example's.
    let renamed = renamed.replace("tags = [\"example/api:{short_sha}\"]\n", "");
    std::fs::write(repo.join("buildopt.toml"), renamed).expect("config");
    for service in ["api", "worker"] {
        let file = repo.join(format!("services/{service}/Dockerfile"));
        let text = std::fs::read_to_string(&file).expect("dockerfile");
        std::fs::write(
            &file,
            text.replace("FROM base", &format!("FROM {prefix}/base")),
        )
        .expect("dockerfile");
    }
    std::fs::write(repo.join("versions.env"), format!("RUN_ID={prefix}\n")).expect("write");
    init(repo);
    let plain = |name: &str, context: &str, dockerfile: &str, args: &[&str]| Plain {
        tag: format!("{prefix}/{name}:latest"),
        context: context.into(),
        dockerfile: dockerfile.into(),
        args: args.iter().map(|a| (*a).to_string()).collect(),
    };
    vec![
        plain("base", "base", "base/Dockerfile", &[]),
        plain("linter", "tools/linter", "tools/linter/Dockerfile", &[]),
        plain("api", ".", "services/api/Dockerfile", &[]),
        plain("worker", ".", "services/worker/Dockerfile", &["WORKERS=2"]),
    ]
}

/// [`GENERATED_IMAGES`] images in folders `imgNN`, each copying its own file; committed. Images
/// 0..roots build FROM busybox; image i ≥ roots builds FROM image i - roots (so with 5 roots each
/// root is the base of 3 more, with 2 roots of 9 more).
pub fn generated_repo(repo: &Path, prefix: &str, roots: usize) -> Vec<Plain> {
    let mut config = String::new();
    let mut images = Vec::new();
    for i in 0..GENERATED_IMAGES {
        let name = format!("img{i:02}");
        let from = if i < roots {
            "buildopt-test/busybox:latest".to_string()
        } else {
            format!("{prefix}/img{:02}", i - roots)
        };
        let dir = repo.join(&name);
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("file.txt"), format!("{name} {prefix}\n")).expect("write");
        std::fs::write(
            dir.join("Dockerfile"),
            format!("FROM {from}\nCOPY file.txt /{name}.txt\nRUN echo {name} > /id-{name}\n"),
        )
        .expect("write");
        config.push_str(&format!(
            "[images.{name}]\nimage = \"{prefix}/{name}\"\ncontext = \"{name}\"\n\n"
        ));
        images.push(Plain {
            tag: format!("{prefix}/{name}:latest"),
            context: name.clone(),
            dockerfile: format!("{name}/Dockerfile"),
            args: Vec::new(),
        });
    }
    std::fs::write(repo.join("buildopt.toml"), config).expect("config");
    init(repo);
    images
}

pub fn init(repo: &Path) {
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", "bench repository"]);
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read example") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub fn git(repo: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(repo)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
        ])
        .args(args)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?} failed");
}
