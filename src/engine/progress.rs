//! Folds build progress into [`StepRecord`]s and [`BuildEvent`]s.
//!
//! Two builders, two formats, one result:
//! - BuildKit sends `moby.buildkit.trace` status updates (decoded by bollard into
//!   `StatusResponse`): each vertex arrives several times (started, then completed with `cached`
//!   and `error`), identified by its digest; RUN output arrives as vertex logs. Durations come
//!   from the daemon's timestamps.
//! - The classic builder sends text (`Step 2/4 : COPY …`, ` ---> Using cache`, output, `Successfully
//!   built …`). Durations are measured on the client between step headers, since it sends none.
//!
//! Both folders are pure: time is passed in, events go to a callback, so they are unit-tested
//! with recorded sequences.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bollard::moby::buildkit::v1::{StatusResponse, Vertex, VertexLog};

use super::lines::InstructionIndex;
use super::{BuildEvent, EngineError, LOG_TAIL_LINES, StepPosition, StepRecord};

/// A step being folded: its record plus what is needed to finish it.
#[derive(Debug)]
struct StepState {
    record: StepRecord,
    announced: bool,
    finished: bool,
    /// The last [`LOG_TAIL_LINES`] complete output lines.
    tail: VecDeque<String>,
    /// Output received after the last newline.
    partial: String,
}

impl StepState {
    fn new(index: usize) -> Self {
        Self {
            record: StepRecord {
                index,
                name: String::new(),
                position: None,
                dockerfile_line: None,
                duration: Duration::ZERO,
                cached: false,
                error: None,
            },
            announced: false,
            finished: false,
            tail: VecDeque::new(),
            partial: String::new(),
        }
    }

    fn keep_line(&mut self, line: &str) {
        if self.tail.len() == LOG_TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_owned());
    }

    fn take_lines(&mut self, text: &str) -> Vec<String> {
        split_lines(&mut self.partial, text)
    }

    fn flush_partial(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.partial);
        (!rest.is_empty()).then_some(rest)
    }

    fn started_event(&self) -> BuildEvent {
        BuildEvent::StepStarted {
            index: self.record.index,
            name: self.record.name.clone(),
            position: self.record.position.clone(),
        }
    }

    fn failure(&self, message: String) -> EngineError {
        EngineError::BuildFailed {
            step: Some(self.record.name.clone()),
            line: self.record.dockerfile_line,
            log_tail: self.tail.iter().cloned().collect(),
            message,
        }
    }
}

/// Appends `text` to `partial` and returns the complete lines, keeping the unterminated rest.
fn split_lines(partial: &mut String, text: &str) -> Vec<String> {
    partial.push_str(text);
    let Some(end) = partial.rfind('\n') else {
        return Vec::new();
    };
    let complete: String = partial.drain(..=end).collect();
    complete
        .lines()
        .map(|line| line.trim_end_matches('\r').to_owned())
        .collect()
}

/// Reads the `[stage n/m]` prefix of a BuildKit vertex name; `[internal]` and unnumbered vertices
/// have no position.
pub(crate) fn buildkit_position(name: &str) -> Option<StepPosition> {
    let inside = name.strip_prefix('[')?.split(']').next()?;
    let mut words: Vec<&str> = inside.split_whitespace().collect();
    let (number, total) = words.pop()?.split_once('/')?;
    let (number, total) = (number.parse().ok()?, total.parse().ok()?);
    // A platform prefix (`linux/amd64`) may come first; the stage name is the word before n/m.
    let stage = words
        .last()
        .filter(|w| !w.contains('/'))
        .map(|w| (*w).to_owned());
    let platform = words
        .first()
        .filter(|w| w.contains('/'))
        .map(|w| target_platform(w));
    Some(StepPosition {
        stage,
        number,
        total,
        platform,
    })
}

/// The platform a step builds for from BuildKit's prefix: `linux/arm64`, or
/// `linux/amd64->arm64` for a step that runs on amd64 for an arm64 image (`FROM
/// --platform=$BUILDPLATFORM`).
fn target_platform(prefix: &str) -> String {
    match prefix.split_once("->") {
        Some((build, target)) => {
            let os = build.split('/').next().unwrap_or("linux");
            format!("{os}/{target}")
        }
        None => prefix.to_owned(),
    }
}

/// Reads a classic `Step n/m : INSTRUCTION` header.
fn classic_position(line: &str) -> Option<StepPosition> {
    let counts = line.strip_prefix("Step ")?.split_whitespace().next()?;
    let (number, total) = counts.split_once('/')?;
    Some(StepPosition {
        stage: None,
        number: number.parse().ok()?,
        total: total.parse().ok()?,
        platform: None,
    })
}

/// Nanoseconds since the epoch of a protobuf timestamp.
fn nanos(seconds: i64, nanos: i32) -> i128 {
    i128::from(seconds) * 1_000_000_000 + i128::from(nanos)
}

/// Folds BuildKit status updates into steps, by vertex digest, in order of first appearance.
#[derive(Debug)]
pub struct BuildKitFolder {
    steps: Vec<StepState>,
    by_digest: HashMap<String, usize>,
    /// Start and completion times (ns since the epoch) per step, from the daemon's clock.
    times: Vec<(Option<i128>, Option<i128>)>,
    index: InstructionIndex,
}

impl BuildKitFolder {
    /// A folder for a build of `dockerfile` (its text locates steps; `None` leaves lines unknown).
    pub fn new(dockerfile: Option<&str>) -> Self {
        Self {
            steps: Vec::new(),
            by_digest: HashMap::new(),
            times: Vec::new(),
            index: dockerfile.map(InstructionIndex::new).unwrap_or_default(),
        }
    }

    /// Applies one status update, emitting what it changed.
    pub fn apply(&mut self, status: &StatusResponse, emit: &mut dyn FnMut(BuildEvent)) {
        for vertex in &status.vertexes {
            self.apply_vertex(vertex, emit);
        }
        for log in &status.logs {
            self.apply_log(log, emit);
        }
    }

    fn step_for(&mut self, digest: &str) -> usize {
        if let Some(&index) = self.by_digest.get(digest) {
            return index;
        }
        let index = self.steps.len();
        self.steps.push(StepState::new(index));
        self.times.push((None, None));
        self.by_digest.insert(digest.to_owned(), index);
        index
    }

    fn apply_vertex(&mut self, vertex: &Vertex, emit: &mut dyn FnMut(BuildEvent)) {
        let index = self.step_for(&vertex.digest);
        if let Some(t) = &vertex.started {
            self.times[index].0 = Some(nanos(t.seconds, t.nanos));
        }
        if let Some(t) = &vertex.completed {
            self.times[index].1 = Some(nanos(t.seconds, t.nanos));
        }
        let (started, completed) = self.times[index];
        let step = &mut self.steps[index];
        if !vertex.name.is_empty() && step.record.name != vertex.name {
            step.record.name = vertex.name.clone();
            step.record.position = buildkit_position(&vertex.name);
            step.record.dockerfile_line = step
                .record
                .position
                .as_ref()
                .and_then(|p| self.index.buildkit_step(p.stage.as_deref(), p.number));
        }
        step.record.cached |= vertex.cached;
        if !vertex.error.is_empty() {
            step.record.error = Some(vertex.error.clone());
        }
        if !step.announced && (started.is_some() || step.record.cached) {
            step.announced = true;
            emit(step.started_event());
        }
        if let (Some(end), false) = (completed, step.finished) {
            step.finished = true;
            let elapsed = end - started.unwrap_or(end);
            step.record.duration = Duration::from_nanos(u64::try_from(elapsed).unwrap_or(0));
            if let Some(rest) = step.flush_partial() {
                step.keep_line(&rest);
                emit(BuildEvent::Log {
                    step: Some(index),
                    line: rest,
                });
            }
            emit(BuildEvent::StepFinished(step.record.clone()));
        }
    }

    fn apply_log(&mut self, log: &VertexLog, emit: &mut dyn FnMut(BuildEvent)) {
        let text = String::from_utf8_lossy(&log.msg);
        let Some(&index) = self.by_digest.get(&log.vertex) else {
            // Output of a vertex never announced: still worth showing, but it belongs to no step.
            for line in text.lines() {
                emit(BuildEvent::Log {
                    step: None,
                    line: line.to_owned(),
                });
            }
            return;
        };
        let step = &mut self.steps[index];
        for line in step.take_lines(&text) {
            step.keep_line(&line);
            emit(BuildEvent::Log {
                step: Some(index),
                line,
            });
        }
    }

    /// The error for a build that ended with `message`: it names the vertex that reported an
    /// error (else the last one that started and did not finish) and keeps its log tail.
    pub fn failure(&mut self, message: String) -> EngineError {
        let failed = self.steps.iter().rposition(|s| s.record.error.is_some());
        let unfinished = || self.steps.iter().rposition(|s| s.announced && !s.finished);
        match failed.or_else(unfinished) {
            Some(index) => {
                let step = &mut self.steps[index];
                if let Some(rest) = step.flush_partial() {
                    step.keep_line(&rest);
                }
                step.failure(message)
            }
            None => EngineError::BuildFailed {
                step: None,
                line: None,
                log_tail: Vec::new(),
                message,
            },
        }
    }

    /// The folded steps, in the order they started (BuildKit announces vertices in graph order,
    /// which is not the Dockerfile's); steps that never started come last.
    pub fn into_steps(self) -> Vec<StepRecord> {
        let mut steps: Vec<(Option<i128>, StepRecord)> = self
            .steps
            .into_iter()
            .zip(&self.times)
            .map(|(s, (started, _))| (*started, s.record))
            .collect();
        steps.sort_by_key(|(started, _)| (started.is_none(), *started));
        steps.into_iter().map(|(_, record)| record).collect()
    }
}

/// Folds the classic builder's text output into steps.
#[derive(Debug)]
pub struct ClassicFolder {
    steps: Vec<StepState>,
    /// When the current (last) step's header arrived.
    current_started: Option<Instant>,
    /// Output received after the last newline (chunks may split lines, even across steps).
    partial: String,
    short_image_id: Option<String>,
    index: InstructionIndex,
}

impl ClassicFolder {
    /// A folder for a build of `dockerfile` (its text locates steps; `None` leaves lines unknown).
    pub fn new(dockerfile: Option<&str>) -> Self {
        Self {
            steps: Vec::new(),
            current_started: None,
            partial: String::new(),
            short_image_id: None,
            index: dockerfile.map(InstructionIndex::new).unwrap_or_default(),
        }
    }

    /// Applies one `stream` chunk received at `at`; chunks may split or join lines.
    pub fn apply(&mut self, text: &str, at: Instant, emit: &mut dyn FnMut(BuildEvent)) {
        for line in split_lines(&mut self.partial, text) {
            self.apply_line(line, at, emit);
        }
    }

    /// Treats output still waiting for its newline as a complete line (the stream has ended).
    fn flush_partial(&mut self, at: Instant, emit: &mut dyn FnMut(BuildEvent)) {
        let rest = std::mem::take(&mut self.partial);
        if !rest.is_empty() {
            self.apply_line(rest, at, emit);
        }
    }

    fn apply_line(&mut self, line: String, at: Instant, emit: &mut dyn FnMut(BuildEvent)) {
        if let Some(position) = classic_position(&line) {
            self.finish_current(at, emit);
            self.start_step(line, position, at, emit);
            return;
        }
        if let Some(id) = line.strip_prefix("Successfully built ") {
            self.finish_current(at, emit);
            self.short_image_id = Some(id.trim().to_owned());
            return;
        }
        let step = self.current_started.map(|_| self.steps.len() - 1);
        if let Some(index) = step {
            let current = &mut self.steps[index];
            if line.trim() == "---> Using cache" {
                current.record.cached = true;
            } else if !is_builder_chatter(&line) {
                current.keep_line(&line);
            }
        }
        emit(BuildEvent::Log { step, line });
    }

    fn start_step(
        &mut self,
        name: String,
        position: StepPosition,
        at: Instant,
        emit: &mut dyn FnMut(BuildEvent),
    ) {
        let mut step = StepState::new(self.steps.len());
        step.record.dockerfile_line = self.index.classic_step(position.number);
        step.record.name = name;
        step.record.position = Some(position);
        step.announced = true;
        emit(step.started_event());
        self.steps.push(step);
        self.current_started = Some(at);
    }

    fn finish_current(&mut self, at: Instant, emit: &mut dyn FnMut(BuildEvent)) {
        let Some(started) = self.current_started.take() else {
            return;
        };
        let step = self
            .steps
            .last_mut()
            .expect("a current step exists while one is started");
        step.finished = true;
        step.record.duration = at.saturating_duration_since(started);
        emit(BuildEvent::StepFinished(step.record.clone()));
    }

    /// Ends the build at `at`: finishes the current step and returns the image id the builder
    /// printed (`Successfully built <short id>`), if any.
    pub fn finish(&mut self, at: Instant, emit: &mut dyn FnMut(BuildEvent)) -> Option<String> {
        self.flush_partial(at, emit);
        self.finish_current(at, emit);
        self.short_image_id.clone()
    }

    /// The error for a build that ended with `message` at `at`: the current step failed.
    pub fn failure(
        &mut self,
        message: String,
        at: Instant,
        emit: &mut dyn FnMut(BuildEvent),
    ) -> EngineError {
        self.flush_partial(at, emit);
        let Some(step) = self
            .steps
            .last_mut()
            .filter(|_| self.current_started.is_some())
        else {
            return EngineError::BuildFailed {
                step: None,
                line: None,
                log_tail: Vec::new(),
                message,
            };
        };
        step.record.error = Some(message.clone());
        self.finish_current(at, emit);
        self.steps
            .last()
            .expect("the failed step is still there")
            .failure(message)
    }

    /// The folded steps, in build order.
    pub fn into_steps(self) -> Vec<StepRecord> {
        self.steps.into_iter().map(|s| s.record).collect()
    }
}

/// Lines the classic builder prints about itself rather than about the instruction's output.
fn is_builder_chatter(line: &str) -> bool {
    let line = line.trim_start();
    line.starts_with("---> ") || line.starts_with("Removing intermediate container ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard_buildkit_proto::google::protobuf::Timestamp;

    const DOCKERFILE: &str =
        "FROM buildopt-test/busybox:latest\nCOPY app.sh /app/\nRUN /app/app.sh\n";

    fn at(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    fn vertex(digest: &str, name: &str) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: name.into(),
            ..Vertex::default()
        }
    }

    fn started(digest: &str, name: &str, second: i64) -> StatusResponse {
        StatusResponse {
            vertexes: vec![Vertex {
                started: at(second, 0),
                ..vertex(digest, name)
            }],
            ..Default::default()
        }
    }

    fn completed(
        digest: &str,
        name: &str,
        from: i64,
        to: (i64, i32),
        cached: bool,
        error: &str,
    ) -> StatusResponse {
        let v = Vertex {
            started: at(from, 0),
            completed: at(to.0, to.1),
            cached,
            error: error.into(),
            ..vertex(digest, name)
        };
        StatusResponse {
            vertexes: vec![v],
            ..Default::default()
        }
    }

    fn log(digest: &str, msg: &str) -> StatusResponse {
        let l = VertexLog {
            vertex: digest.into(),
            msg: msg.as_bytes().to_vec(),
            stream: 1,
            timestamp: None,
        };
        StatusResponse {
            logs: vec![l],
            ..Default::default()
        }
    }

    fn fold(updates: &[StatusResponse]) -> (BuildKitFolder, Vec<BuildEvent>) {
        let mut folder = BuildKitFolder::new(Some(DOCKERFILE));
        let mut events = Vec::new();
        for update in updates {
            folder.apply(update, &mut |e| events.push(e));
        }
        (folder, events)
    }

    #[test]
    fn buildkit_vertices_become_steps_with_daemon_durations_and_lines() {
        let (folder, events) = fold(&[
            started("sha256:ctx", "[internal] load build context", 10),
            completed(
                "sha256:ctx",
                "[internal] load build context",
                10,
                (10, 250_000_000),
                false,
                "",
            ),
            started("sha256:copy", "[2/3] COPY app.sh /app/", 11),
            completed(
                "sha256:copy",
                "[2/3] COPY app.sh /app/",
                11,
                (11, 500_000_000),
                false,
                "",
            ),
            started("sha256:run", "[3/3] RUN /app/app.sh", 12),
            log("sha256:run", "hello\nwor"),
            log("sha256:run", "ld\n"),
            completed(
                "sha256:run",
                "[3/3] RUN /app/app.sh",
                12,
                (14, 0),
                false,
                "",
            ),
        ]);
        let steps = folder.into_steps();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[0].position, None);
        assert_eq!(steps[0].duration, Duration::from_millis(250));
        assert_eq!(
            steps[1].position,
            Some(StepPosition {
                stage: None,
                number: 2,
                total: 3,
                platform: None,
            })
        );
        assert_eq!(steps[1].dockerfile_line, Some(2));
        assert_eq!(steps[1].duration, Duration::from_millis(500));
        assert_eq!(steps[2].dockerfile_line, Some(3));
        assert_eq!(steps[2].duration, Duration::from_secs(2));
        assert!(steps.iter().all(|s| !s.cached && s.error.is_none()));
        let logs: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                BuildEvent::Log { step, line } => Some((*step, line.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(logs, [(Some(2), "hello"), (Some(2), "world")]);
        let started_count = events
            .iter()
            .filter(|e| matches!(e, BuildEvent::StepStarted { .. }))
            .count();
        let finished_count = events
            .iter()
            .filter(|e| matches!(e, BuildEvent::StepFinished(_)))
            .count();
        assert_eq!((started_count, finished_count), (3, 3));
    }

    #[test]
    fn steps_are_ordered_by_start_time_not_by_announcement() {
        let announce = StatusResponse {
            vertexes: vec![
                vertex("sha256:run", "[2/2] RUN x"),
                vertex("sha256:from", "[1/2] FROM y"),
            ],
            ..Default::default()
        };
        let (folder, _) = fold(&[
            announce,
            completed("sha256:from", "[1/2] FROM y", 1, (1, 0), false, ""),
            completed("sha256:run", "[2/2] RUN x", 2, (3, 0), false, ""),
        ]);
        let steps = folder.into_steps();
        assert_eq!(
            steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["[1/2] FROM y", "[2/2] RUN x"]
        );
        assert_eq!(
            steps.iter().map(|s| s.index).collect::<Vec<_>>(),
            [1, 0],
            "indexes still match the events"
        );
    }

    #[test]
    fn cached_vertices_are_announced_once_and_marked_cached() {
        let cached = Vertex {
            cached: true,
            ..vertex("sha256:copy", "[2/3] COPY app.sh /app/")
        };
        let done = Vertex {
            started: at(5, 0),
            completed: at(5, 0),
            cached: true,
            ..cached.clone()
        };
        let (folder, events) = fold(&[
            StatusResponse {
                vertexes: vec![cached],
                ..Default::default()
            },
            StatusResponse {
                vertexes: vec![done],
                ..Default::default()
            },
        ]);
        assert_eq!(events.len(), 2, "{events:?}");
        let steps = folder.into_steps();
        assert!(steps[0].cached);
        assert_eq!(steps[0].duration, Duration::ZERO);
    }

    #[test]
    fn a_failing_vertex_names_the_step_and_keeps_its_last_lines() {
        let mut updates = vec![started("sha256:run", "[3/3] RUN /app/app.sh", 1)];
        for n in 0..30 {
            updates.push(log("sha256:run", &format!("line {n}\n")));
        }
        updates.push(log("sha256:run", "no newline at the end"));
        let error = "executor failed running [/bin/sh -c /app/app.sh]: exit code: 1";
        updates.push(completed(
            "sha256:run",
            "[3/3] RUN /app/app.sh",
            1,
            (2, 0),
            false,
            error,
        ));
        let (mut folder, _) = fold(&updates);
        let EngineError::BuildFailed {
            step,
            line,
            log_tail,
            message,
        } = folder.failure(error.into())
        else {
            panic!("expected BuildFailed");
        };
        assert_eq!(step.as_deref(), Some("[3/3] RUN /app/app.sh"));
        assert_eq!(line, Some(3));
        assert_eq!(message, error);
        assert_eq!(log_tail.len(), LOG_TAIL_LINES);
        assert_eq!(log_tail.first().map(String::as_str), Some("line 11"));
        assert_eq!(
            log_tail.last().map(String::as_str),
            Some("no newline at the end")
        );
        assert_eq!(folder.into_steps()[0].error.as_deref(), Some(error));
    }

    #[test]
    fn a_failure_without_a_vertex_error_blames_the_unfinished_step() {
        let (mut folder, _) = fold(&[
            completed("sha256:a", "[1/3] FROM x", 1, (1, 0), true, ""),
            started("sha256:b", "[2/3] COPY app.sh /app/", 2),
        ]);
        let EngineError::BuildFailed { step, .. } = folder.failure("context canceled".into())
        else {
            panic!("expected BuildFailed");
        };
        assert_eq!(step.as_deref(), Some("[2/3] COPY app.sh /app/"));
        let (mut empty, _) = fold(&[]);
        assert!(matches!(
            empty.failure("bad".into()),
            EngineError::BuildFailed { step: None, .. }
        ));
    }

    #[test]
    fn buildkit_positions_read_stage_names_and_platforms() {
        assert_eq!(buildkit_position("[internal] load .dockerignore"), None);
        assert_eq!(buildkit_position("exporting to image"), None);
        assert_eq!(
            buildkit_position("[builder 2/4] RUN make"),
            Some(StepPosition {
                stage: Some("builder".into()),
                number: 2,
                total: 4,
                platform: None,
            })
        );
        assert_eq!(
            buildkit_position("[linux/amd64 3/5] RUN make"),
            Some(StepPosition {
                stage: None,
                number: 3,
                total: 5,
                platform: Some("linux/amd64".into()),
            })
        );
        // As Docker 28.5 names the steps of `FROM --platform=$BUILDPLATFORM` for arm64.
        assert_eq!(
            buildkit_position("[linux/amd64->arm64 build 2/2] RUN make"),
            Some(StepPosition {
                stage: Some("build".into()),
                number: 2,
                total: 2,
                platform: Some("linux/arm64".into()),
            })
        );
        assert_eq!(
            buildkit_position("[linux/arm64/v8 stage-1 1/2] COPY a /").and_then(|p| p.platform),
            Some("linux/arm64/v8".into())
        );
    }

    fn fold_classic(chunks: &[&str]) -> (ClassicFolder, Vec<BuildEvent>, Instant) {
        let mut folder = ClassicFolder::new(Some(DOCKERFILE));
        let mut events = Vec::new();
        let start = Instant::now();
        for (n, chunk) in chunks.iter().enumerate() {
            folder.apply(chunk, start + Duration::from_secs(n as u64), &mut |e| {
                events.push(e)
            });
        }
        (
            folder,
            events,
            start + Duration::from_secs(chunks.len() as u64),
        )
    }

    #[test]
    fn classic_output_becomes_steps_with_cache_hits_and_client_durations() {
        let (mut folder, mut events, end) = fold_classic(&[
            "Step 1/3 : FROM buildopt-test/busybox:latest\n",
            " ---> 2a4520dc1c0e\n",
            "Step 2/3 : COPY app.sh /app/\n",
            " ---> Using cache\n ---> 5d1f\n",
            "Step 3/3 : RUN /app/app.sh\n ---> Running in 0c1d\nhel",
            "lo\n",
            "Removing intermediate container 0c1d\n ---> 9e8f\n",
            "Successfully built 9e8f\nSuccessfully tagged app:ci\n",
        ]);
        assert_eq!(
            folder.finish(end, &mut |e| events.push(e)).as_deref(),
            Some("9e8f")
        );
        let steps = folder.into_steps();
        assert_eq!(steps.len(), 3);
        assert_eq!(steps[1].name, "Step 2/3 : COPY app.sh /app/");
        assert_eq!(
            steps.iter().map(|s| s.cached).collect::<Vec<_>>(),
            [false, true, false]
        );
        assert_eq!(
            steps.iter().map(|s| s.dockerfile_line).collect::<Vec<_>>(),
            [Some(1), Some(2), Some(3)]
        );
        assert_eq!(steps[0].duration, Duration::from_secs(2));
        assert_eq!(steps[2].duration, Duration::from_secs(3));
        assert!(events.contains(&BuildEvent::Log {
            step: Some(2),
            line: "hello".into()
        }));
        let finished = events
            .iter()
            .filter(|e| matches!(e, BuildEvent::StepFinished(_)))
            .count();
        assert_eq!(
            finished, 3,
            "finish after 'Successfully built' must not finish a step twice"
        );
    }

    #[test]
    fn a_classic_failure_blames_the_current_step_with_its_output() {
        let (mut folder, mut events, end) = fold_classic(&[
            "Step 1/3 : FROM buildopt-test/busybox:latest\n ---> 2a45\n",
            "Step 2/3 : RUN echo about to fail && false\n ---> Running in 77aa\n",
            "about to fail\nno newline",
        ]);
        let message =
            "The command '/bin/sh -c echo about to fail && false' returned a non-zero code: 1";
        let error = folder.failure(message.into(), end, &mut |e| events.push(e));
        let EngineError::BuildFailed {
            step,
            line,
            log_tail,
            ..
        } = error
        else {
            panic!("expected BuildFailed")
        };
        assert_eq!(
            step.as_deref(),
            Some("Step 2/3 : RUN echo about to fail && false")
        );
        assert_eq!(line, Some(2));
        assert_eq!(log_tail, ["about to fail", "no newline"]);
        assert_eq!(folder.into_steps()[1].error.as_deref(), Some(message));
    }

    #[test]
    fn a_classic_failure_before_any_step_has_no_step() {
        let (mut folder, mut events, end) =
            fold_classic(&["Sending build context to Docker daemon  2kB\n"]);
        let error = folder.failure("dockerfile parse error line 1".into(), end, &mut |e| {
            events.push(e)
        });
        assert!(matches!(error, EngineError::BuildFailed { step: None, .. }));
        assert_eq!(
            events,
            [BuildEvent::Log {
                step: None,
                line: "Sending build context to Docker daemon  2kB".into()
            }]
        );
    }
}
