//! `scan::version` against each ecosystem's own implementation, on thousands of generated
//! versions: dpkg (`dpkg --compare-versions`), PEP 440 (Python's `packaging`), SemVer (npm's
//! `semver` package), rpm (`rpm.vercmp` in rpm's embedded Lua), Maven (`ComparableVersion`
//! from Debian's Maven 3.8.7, through groovy), RubyGems (`Gem::Version` of Debian's Ruby). apk
//! has no oracle here: Debian 12 ships no apk-tools.
//!
//! Each test draws a pool of versions from a seeded generator over the ecosystem's alphabet
//! (small, so near-equal versions are common), then checks random pairs of the pool, and the
//! pool sorted by our order pair by pair (so the oracle agreeing on each neighbour checks the
//! whole order). One oracle process answers every pair, except dpkg, which takes one process
//! per comparison, batched in one shell script. Every disagreement fails the test with the pair.
//! Whether a version can be read at all is compared too: an error here must be an error there.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use buildopt::scan::version::{VersionOrder, compare};

use crate::skips;
use crate::support::required_tool;

/// Versions drawn per order; pairs checked: this many random pairs plus the sorted chain.
const POOL: usize = 1500;

/// splitmix64: deterministic, so a failure names pairs that reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const NUMBERS: [&str; 11] = [
    "0", "1", "2", "3", "9", "10", "11", "01", "00", "100", "20240101",
];

fn debian_version(rng: &mut Rng) -> String {
    let mut version = String::new();
    if rng.chance(15) {
        write!(version, "{}:", rng.below(3)).unwrap();
    }
    version += rng.pick(&NUMBERS);
    for _ in 0..rng.below(5) {
        version += rng.pick(&[
            ".", ".", ".", "+", "~", "a", "b", "rc", "~rc", "+dfsg", "Z", "~~", "+git", "-",
        ]);
        if rng.chance(70) {
            version += rng.pick(&NUMBERS);
        }
    }
    if version.contains('-') || rng.chance(70) {
        version += "-";
        version += rng.pick(&NUMBERS);
        version += rng.pick(&[
            "", "", "+b1", "+deb12u1", "ubuntu1", "~bpo11+1", ".1", "~", "a",
        ]);
    }
    version
}

fn pep440_version(rng: &mut Rng) -> String {
    if rng.chance(3) {
        return rng
            .pick(&[
                "1.0-foo-bar",
                "1.0+",
                "one",
                "1..0",
                "1.0.dev1.post1",
                "1.0+a+b",
                "1.0_",
            ])
            .to_owned();
    }
    let mut version = String::new();
    if rng.chance(5) {
        version += rng.pick(&["v", "V", " "]);
    }
    if rng.chance(10) {
        write!(version, "{}!", rng.below(3)).unwrap();
    }
    let parts: Vec<&str> = (0..1 + rng.below(4))
        .map(|_| rng.pick(&["0", "1", "2", "10", "01"]))
        .collect();
    version += &parts.join(".");
    if rng.chance(30) {
        version += rng.pick(&[
            "a", "b", "rc", "alpha", "beta", "c", "pre", "preview", ".a", "-RC", "_b",
        ]);
        if rng.chance(80) {
            version += rng.pick(&NUMBERS[..7]);
        }
    }
    if rng.chance(20) {
        version += rng.pick(&[".post", "-post", "post", ".r", "-", "_rev"]);
        version += rng.pick(&NUMBERS[..7]);
    }
    if rng.chance(20) {
        version += rng.pick(&[".dev", "dev", "-dev", "_DEV"]);
        if rng.chance(80) {
            version += rng.pick(&NUMBERS[..7]);
        }
    }
    if rng.chance(15) {
        version += "+";
        let segments: Vec<&str> = (0..1 + rng.below(3))
            .map(|_| rng.pick(&["ubuntu", "1", "abc", "0", "deb12", "01", "Z"]))
            .collect();
        version += &segments.join(rng.pick(&[".", "-", "_"]));
    }
    version
}

fn semver_version(rng: &mut Rng) -> String {
    if rng.chance(3) {
        return rng
            .pick(&[
                "1.2", "01.2.3", "1.2.3-01", "1.2.3-", "1.2.3+", "1.2.3.4", "a.b.c",
            ])
            .to_owned();
    }
    let numbers = ["0", "1", "2", "10"];
    let mut version = String::new();
    if rng.chance(10) {
        version += "v";
    }
    write!(
        version,
        "{}.{}.{}",
        rng.pick(&numbers),
        rng.pick(&numbers),
        rng.pick(&numbers)
    )
    .unwrap();
    if rng.chance(50) {
        let identifiers: Vec<&str> = (0..1 + rng.below(3))
            .map(|_| {
                rng.pick(&[
                    "0", "1", "2", "11", "alpha", "beta", "rc", "x", "alpha-1", "0a", "a0", "-",
                ])
            })
            .collect();
        version += "-";
        version += &identifiers.join(".");
    }
    if rng.chance(20) {
        version += "+";
        version += rng.pick(&["build.1", "001", "incompatible", "sha.abc", "x-y"]);
    }
    version
}

fn rpm_version(rng: &mut Rng) -> String {
    let mut version = String::new();
    if rng.chance(15) {
        write!(version, "{}:", rng.below(3)).unwrap();
    }
    if rng.chance(90) {
        version += rng.pick(&NUMBERS);
    }
    for _ in 0..rng.below(5) {
        version += rng.pick(&[
            ".",
            ".",
            "1",
            "2",
            "10",
            "01",
            "0",
            "a",
            "b",
            "rc",
            "~",
            "^",
            "_",
            "+",
            "git",
            "el9",
            "~rc",
            "^20240101",
            "A",
            ":",
        ]);
    }
    if version.is_empty() || rng.chance(60) {
        version += "-";
        version += rng.pick(&NUMBERS);
        version += rng.pick(&["", ".el9", ".el9_5", ".fc40", "~1", "^1", "a"]);
    }
    version
}

fn maven_version(rng: &mut Rng) -> String {
    let mut version = rng.pick(&NUMBERS).to_owned();
    for _ in 0..rng.below(6) {
        version += rng.pick(&[".", ".", "-", "-", ""]);
        version += if rng.chance(50) {
            rng.pick(&["0", "1", "2", "10", "01", "00", "2147483648"])
        } else {
            rng.pick(&[
                "alpha",
                "a",
                "beta",
                "B",
                "m",
                "milestone",
                "rc",
                "CR",
                "SNAPSHOT",
                "ga",
                "final",
                "sp",
                "abc",
                "RELEASE",
                "x",
                "",
            ])
        };
    }
    version
}

fn rubygems_version(rng: &mut Rng) -> String {
    if rng.chance(3) {
        return rng
            .pick(&["1..0", "1.", "a", "1.0-", "1_0", "-1", "1.0-.a", "1 0"])
            .to_owned();
    }
    let mut version = rng.pick(&NUMBERS).to_owned();
    for _ in 0..rng.below(5) {
        version += rng.pick(&[".", ".", ".", "-"]);
        version += rng.pick(&[
            "0", "1", "2", "10", "01", "a", "b", "pre", "rc", "alpha", "beta", "A", "Z", "x1", "1a",
        ]);
    }
    version
}

/// Our answer: an ordering, or `None` when the order cannot read one of the versions.
fn ours(order: VersionOrder, a: &str, b: &str) -> Option<Ordering> {
    compare(order, a, b).ok()
}

/// The pairs to check: random pairs of a generated pool, then the pool's readable versions
/// sorted by our order, each with its neighbour.
fn pairs(
    order: VersionOrder,
    seed: u64,
    generate: fn(&mut Rng) -> String,
) -> Vec<(String, String)> {
    let mut rng = Rng(seed);
    let pool: Vec<String> = (0..POOL).map(|_| generate(&mut rng)).collect();
    let mut pairs = random_pairs(&pool, &mut rng, POOL);
    let mut readable: Vec<&String> = pool
        .iter()
        .filter(|v| ours(order, v, v).is_some())
        .collect();
    assert!(
        readable.len() * 10 >= POOL * 8,
        "{order}: the generator made too few readable versions ({})",
        readable.len()
    );
    readable.sort_by(|a, b| ours(order, a, b).unwrap_or(Ordering::Equal));
    readable.dedup();
    pairs.extend(readable.windows(2).map(|w| (w[0].clone(), w[1].clone())));
    pairs
}

fn random_pairs(pool: &[String], rng: &mut Rng, count: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|_| {
            (
                pool[rng.below(pool.len())].clone(),
                pool[rng.below(pool.len())].clone(),
            )
        })
        .collect()
}

/// Fails with every pair whose oracle answer (one line of its output) `agrees` rejects.
fn assert_agree(
    order: VersionOrder,
    oracle: &str,
    pairs: &[(String, String)],
    answers: &[String],
    agrees: impl Fn(Option<Ordering>, &str) -> bool,
) {
    assert_eq!(
        answers.len(),
        pairs.len(),
        "{oracle} answered {} of {} pairs",
        answers.len(),
        pairs.len()
    );
    let mismatches: Vec<String> = pairs
        .iter()
        .zip(answers)
        .filter_map(|((a, b), theirs)| {
            let mine = ours(order, a, b);
            (!agrees(mine, theirs))
                .then(|| format!("  {a:?} vs {b:?}: ours {mine:?}, {oracle} {theirs:?}"))
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{order} disagrees with {oracle} on {} of {} pairs:\n{}",
        mismatches.len(),
        pairs.len(),
        mismatches.join("\n")
    );
}

/// For oracles that print `-1`/`0`/`1` (any signed number) or `E` (cannot read).
fn same_sign(mine: Option<Ordering>, theirs: &str) -> bool {
    let theirs = match theirs.trim() {
        "E" => None,
        number => number.parse::<i64>().ok().map(|n| n.cmp(&0)),
    };
    mine == theirs
}

/// Runs `program` with the pairs on stdin, one `a<TAB>b` line each; returns its stdout lines.
fn ask(
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    pairs: &[(String, String)],
) -> Vec<String> {
    let input: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    ask_with_input(program, args, envs, &input)
}

fn ask_with_input(program: &str, args: &[&str], envs: &[(&str, &str)], input: &str) -> Vec<String> {
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("oracle output");
    writer.join().expect("writer").expect("write pairs");
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[test]
fn dpkg_order_matches_dpkg_compare_versions() {
    let test = "dpkg_order_matches_dpkg_compare_versions";
    if required_tool("dpkg", test).is_none() {
        return;
    }
    let order = VersionOrder::Debian;
    let pairs = pairs(order, 0xdeb, debian_version);
    // One dpkg per pair (about 3 ms each here), all from one shell: the relation asked is
    // the one we found, so exit 0 means agreement, 1 disagreement, 2 a version dpkg rejects.
    let mut script = String::new();
    for (a, b) in &pairs {
        let relation = match ours(order, a, b) {
            Some(Ordering::Less) | None => "lt",
            Some(Ordering::Equal) => "eq",
            Some(Ordering::Greater) => "gt",
        };
        writeln!(
            script,
            "dpkg --compare-versions {} {relation} {} 2>/dev/null; echo $?",
            shell_quote(a),
            shell_quote(b)
        )
        .unwrap();
    }
    let statuses = ask_with_input("sh", &[], &[], &script);
    // dpkg exits 0 when the relation holds, 1 when it does not, 2 on a version it rejects.
    let agrees = |mine: Option<Ordering>, status: &str| match mine {
        Some(_) => status == "0",
        None => status != "0" && status != "1",
    };
    assert_agree(order, "dpkg", &pairs, &statuses, agrees);
}

#[test]
fn pep440_order_matches_python_packaging() {
    let test = "pep440_order_matches_python_packaging";
    if required_tool("python3", test).is_none() {
        return;
    }
    let has_packaging = Command::new("python3")
        .args(["-c", "import packaging.version"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !skips::require(
        has_packaging,
        test,
        "Python's `packaging`",
        "tests/testbed/install-peers.sh",
    ) {
        return;
    }
    let order = VersionOrder::Pep440;
    let pairs = pairs(order, 0x440, pep440_version);
    let program = r#"
import sys
from packaging.version import Version, InvalidVersion
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    try:
        x, y = Version(a), Version(b)
    except InvalidVersion:
        print("E")
        continue
    print((x > y) - (x < y))
"#;
    let answers = ask("python3", &["-c", program], &[], &pairs);
    assert_agree(order, "packaging", &pairs, &answers, same_sign);
}

#[test]
fn semver_order_matches_npm_semver() {
    let test = "semver_order_matches_npm_semver";
    let (Some(_), Some(_)) = (required_tool("node", test), required_tool("npm", test)) else {
        return;
    };
    let global_modules = ask_with_input("npm", &["root", "-g"], &[], "");
    let node_path = global_modules.first().cloned().unwrap_or_default();
    let has_semver = Path::new(&node_path).join("semver/package.json").is_file();
    if !skips::require(
        has_semver,
        test,
        "npm's `semver` package (global)",
        "tests/testbed/install-peers.sh",
    ) {
        return;
    }
    let order = VersionOrder::Semver;
    let pairs = pairs(order, 0x5e3, semver_version);
    let program = r#"
const semver = require("semver");
const out = [];
for (const line of require("fs").readFileSync(0, "utf8").split("\n")) {
  if (line === "") continue;
  const [a, b] = line.split("\t");
  const x = semver.parse(a), y = semver.parse(b);
  out.push(x && y ? String(semver.compare(x, y)) : "E");
}
process.stdout.write(out.join("\n") + "\n");
"#;
    let answers = ask(
        "node",
        &["-e", program],
        &[("NODE_PATH", &node_path)],
        &pairs,
    );
    assert_agree(order, "npm semver", &pairs, &answers, same_sign);
}

#[test]
fn maven_order_matches_maven_comparable_version() {
    let test = "maven_order_matches_maven_comparable_version";
    if required_tool("groovy", test).is_none() {
        return;
    }
    // Debian's libmaven3-core-java.
    let jar = "/usr/share/java/maven-artifact-3.x.jar";
    if !skips::require(
        Path::new(jar).is_file(),
        test,
        jar,
        "tests/testbed/install-peers.sh",
    ) {
        return;
    }
    let order = VersionOrder::Maven;
    // Maven's order is not transitive (see the unit tests of `maven.rs`), so no sorted chain:
    // twice as many random pairs instead.
    let mut rng = Rng(0x3a7);
    let pool: Vec<String> = (0..POOL).map(|_| maven_version(&mut rng)).collect();
    let pairs = random_pairs(&pool, &mut rng, 2 * POOL);
    let program = r#"
import org.apache.maven.artifact.versioning.ComparableVersion
System.in.eachLine { line ->
  def (a, b) = line.split("\t", -1)
  println Integer.signum(new ComparableVersion(a).compareTo(new ComparableVersion(b)))
}
"#;
    let answers = ask("groovy", &["-cp", jar, "-e", program], &[], &pairs);
    assert_agree(order, "ComparableVersion", &pairs, &answers, same_sign);
}

#[test]
fn rubygems_order_matches_gem_version() {
    let test = "rubygems_order_matches_gem_version";
    if required_tool("ruby", test).is_none() {
        return;
    }
    let order = VersionOrder::RubyGems;
    let pairs = pairs(order, 0x9e3, rubygems_version);
    let program = r#"
STDIN.each_line do |line|
  a, b = line.chomp.split("\t", -1)
  if Gem::Version.correct?(a) && Gem::Version.correct?(b)
    puts(Gem::Version.new(a) <=> Gem::Version.new(b))
  else
    puts "E"
  end
end
"#;
    let answers = ask("ruby", &["-e", program], &[], &pairs);
    assert_agree(order, "Gem::Version", &pairs, &answers, same_sign);
}

#[test]
fn rpm_order_matches_rpm_vercmp() {
    let test = "rpm_order_matches_rpm_vercmp";
    if required_tool("rpm", test).is_none() {
        return;
    }
    let order = VersionOrder::Rpm;
    let pairs = pairs(order, 0x4e4, rpm_version);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("pairs.txt");
    let lines: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    std::fs::write(&input, lines).expect("write pairs");
    // rpm 4.18's `rpm.vercmp` parses `[epoch:]version[-release]` as rpm does for packages.
    let script = format!(
        r#"%{{lua:
for line in io.lines("{}") do
  local a, b = line:match("^([^\t]*)\t(.*)$")
  local ok, r = pcall(rpm.vercmp, a, b)
  io.write(ok and tostring(r) or "E", "\n")
end
}}"#,
        input.display()
    );
    let mut answers = ask_with_input("rpm", &["--eval", &script], &[], "");
    // `--eval` ends the expansion with a newline of its own.
    answers.retain(|line| !line.is_empty());
    assert_agree(order, "rpm.vercmp", &pairs, &answers, same_sign);
}
