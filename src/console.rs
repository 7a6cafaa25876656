//! What `buildopt build` shows on stderr while it runs, in one of three styles:
//!
//! - `Live` (a terminal, not CI): one line per running image with its current step, redrawn;
//! - `Plain` (CI or no terminal): timestamped lines as things happen;
//! - `GitHub` (GitHub Actions): per image, a `::group::` with its steps, printed when it ends (so
//!   parallel builds never interleave inside a group).
//!
//! Image and step names come from the repository and the builder: every line shows them through
//! [`console_name`]/[`console_line`], the one escaping the renderers use too, so a name can
//! neither start a workflow command nor send an escape sequence to the terminal.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use crate::report::annotations;
use crate::report::escape::{console_line, console_name};
use crate::report::run::duration;
use crate::scheduler::Progress;

/// The output style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Live,
    Plain,
    GitHub,
    /// `--quiet`.
    Silent,
}

/// Receives scheduler progress and prints it in one [`Style`].
#[derive(Debug)]
pub struct Console {
    style: Style,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Live: the running images and their current step line.
    running: BTreeMap<String, String>,
    /// Live: how many lines the last redraw printed.
    drawn: usize,
    /// GitHub: the steps seen per image.
    steps: BTreeMap<String, Vec<String>>,
}

impl Console {
    pub fn new(style: Style) -> Self {
        Self {
            style,
            state: Mutex::new(State::default()),
        }
    }

    /// Handles one progress event.
    pub fn show(&self, progress: Progress) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        match self.style {
            Style::Silent => {}
            Style::Plain => {
                let _ = writeln!(err, "[{}] {}", now(), plain_line(&progress));
            }
            Style::GitHub => github(&mut state, &mut err, progress),
            Style::Live => live(&mut state, &mut err, progress),
        }
    }
}

fn now() -> String {
    chrono::Utc::now().format("%H:%M:%S").to_string()
}

fn step_text(name: &str, position: Option<(usize, usize)>) -> String {
    let name = console_line(name);
    match position {
        Some((number, total)) => format!("step {number}/{total} {name}"),
        None => name,
    }
}

fn plain_line(progress: &Progress) -> String {
    match progress {
        Progress::Started { image } => format!("{}: started", console_name(image)),
        Progress::Step {
            image,
            name,
            position,
        } => format!("{}: {}", console_name(image), step_text(name, *position)),
        Progress::Finished {
            image,
            result,
            duration: took,
        } => format!(
            "{}: {} in {}",
            console_name(image),
            result.as_str(),
            duration(took.as_millis() as u64)
        ),
    }
}

/// A token nobody can guess from the log, so no step line can resume commands early.
/// In GitHub Actions, `text` between `::stop-commands::TOKEN` and `::TOKEN::`: final tables hold
/// failure messages and build log tails, and the runner reads a line after every `\r` too, so a
/// progress line of a build could otherwise issue `::error`, `::add-mask::` or
/// `::stop-commands::` itself. Elsewhere `text` as it is.
pub fn inert_in_github(github: bool, text: String) -> String {
    if !github {
        return text;
    }
    let token = stop_token();
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    format!("::stop-commands::{token}\n{text}{newline}::{token}::\n")
}

fn stop_token() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness, a fixed token still stops commands; it is only guessable.
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn github(state: &mut State, err: &mut impl Write, progress: Progress) {
    match progress {
        Progress::Started { .. } => {}
        Progress::Step {
            image,
            name,
            position,
        } => state
            .steps
            .entry(image)
            .or_default()
            .push(step_text(&name, position)),
        Progress::Finished { ref image, .. } => {
            let steps = state.steps.remove(image).unwrap_or_default();
            let _ = writeln!(err, "{}", annotations::group(&plain_line(&progress)));
            // Step names come from the Dockerfile and the builder: between these markers the
            // runner treats no line as a workflow command, so `::add-mask::` or `::error::` in
            // a RUN line cannot fire.
            let token = stop_token();
            let _ = writeln!(err, "::stop-commands::{token}");
            for step in steps {
                let _ = writeln!(err, "{step}");
            }
            let _ = writeln!(err, "::{token}::");
            let _ = writeln!(err, "{}", annotations::endgroup());
        }
    }
}

fn live(state: &mut State, err: &mut impl Write, progress: Progress) {
    // Move up over the previous drawing and clear it.
    for _ in 0..state.drawn {
        let _ = write!(err, "\x1b[1A\x1b[2K");
    }
    match &progress {
        Progress::Started { image } => {
            state.running.insert(image.clone(), "starting".into());
        }
        Progress::Step {
            image,
            name,
            position,
        } => {
            state
                .running
                .insert(image.clone(), step_text(name, *position));
        }
        Progress::Finished { image, .. } => {
            state.running.remove(image);
            // Finished images scroll up as permanent lines.
            let _ = writeln!(err, "{}", plain_line(&progress));
        }
    }
    let width = terminal_width();
    for (image, step) in &state.running {
        let line = format!("{}: {step}", console_name(image));
        let _ = writeln!(err, "{}", line.chars().take(width).collect::<String>());
    }
    state.drawn = state.running.len();
}

fn terminal_width() -> usize {
    // Without a way to ask the terminal, stay within the classic 80 columns.
    79
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::report::model::ImageResult;

    #[test]
    fn github_groups_fence_step_lines_off_from_workflow_commands() {
        let mut state = State::default();
        let mut out = Vec::new();
        let step = |name: &str| Progress::Step {
            image: "api".into(),
            name: name.into(),
            position: None,
        };
        github(&mut state, &mut out, step("RUN echo ::add-mask::secret"));
        github(&mut state, &mut out, step("::error::forged"));
        let finished = Progress::Finished {
            image: "api%0A::x".into(),
            result: ImageResult::Built,
            duration: Duration::ZERO,
        };
        state.steps.insert(
            "api%0A::x".into(),
            state.steps.get("api").cloned().unwrap_or_default(),
        );
        github(&mut state, &mut out, finished);
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("::group::") && !lines[0].contains("\n"),
            "{text}"
        );
        let token = lines[1]
            .strip_prefix("::stop-commands::")
            .expect("stop-commands first");
        assert_eq!(token.len(), 32);
        let forged_line = "\\x3a:error::forged";
        assert!(lines.contains(&forged_line), "{text}");
        assert!(!lines.iter().any(|l| l.starts_with("::error")), "{text}");
        let resume = lines
            .iter()
            .position(|l| *l == format!("::{token}::"))
            .expect("resumed");
        let forged = lines
            .iter()
            .position(|l| *l == forged_line)
            .expect("forged line");
        assert!(
            forged < resume,
            "the forged command sits inside the stopped section: {text}"
        );
        assert_eq!(lines.last(), Some(&"::endgroup::"));
        assert!(lines[0].contains("%250A"), "the title is escaped: {text}");
    }
}
