//! What to build, in which order, and why.
//!
//! Owns: the image graph ([`graph`]), the affected computation ([`affected`]), inputs digests
//! ([`digest`]), which source selected each image and selection against the build record
//! ([`selection`]), and the plan data model ([`model`]) that renderers read. Pure: the caller gathers
//! the workspace, the change set and the base's definitions; nothing here runs git or prints.

pub mod affected;
pub mod digest;
pub mod graph;
pub mod model;
pub mod selection;

pub use affected::{Mode, PlanInput, plan, plan_with_record};
pub use graph::{Graph, GraphError};
pub use model::{Plan, PlanRange, PlannedImage, Reason, ReasonKind, RemovedImage};
pub use selection::{RecordSelection, SelectedBy};

#[cfg(test)]
mod tests;
