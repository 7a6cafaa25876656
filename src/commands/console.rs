//! What `buildopt build` shows on stderr while it runs, in one of three styles:
//!
//! - `Live` (a terminal, not CI): one line per running image with its current step, redrawn;
//! - `Plain` (CI or no terminal): timestamped lines as things happen;
//! - `GitHub` (GitHub Actions): per image, a `::group::` with its steps, printed when it ends (so
//!   parallel builds never interleave inside a group).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;

use crate::build::Progress;
use crate::report::build::duration;

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
    match position {
        Some((number, total)) => format!("step {number}/{total} {name}"),
        None => name.to_string(),
    }
}

fn plain_line(progress: &Progress) -> String {
    match progress {
        Progress::Started { image } => format!("{image}: started"),
        Progress::Step {
            image,
            name,
            position,
        } => format!("{image}: {}", step_text(name, *position)),
        Progress::Finished {
            image,
            result,
            duration: took,
        } => format!(
            "{image}: {} in {}",
            result.as_str(),
            duration(took.as_millis() as u64)
        ),
    }
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
            let _ = writeln!(err, "::group::{}", plain_line(&progress));
            for step in steps {
                let _ = writeln!(err, "{step}");
            }
            let _ = writeln!(err, "::endgroup::");
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
        let line = format!("{image}: {step}");
        let _ = writeln!(err, "{}", line.chars().take(width).collect::<String>());
    }
    state.drawn = state.running.len();
}

fn terminal_width() -> usize {
    // Without a way to ask the terminal, stay within the classic 80 columns.
    79
}
