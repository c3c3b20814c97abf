//! The engine's pure core: `decide` (a command to events, or a refusal) and `evolve` (an event
//! to the next state). No IO, no clock (the time is in [`Context`]), no randomness (ids come
//! with the command), so every rule is a unit test and replay is exact.
//!
//! Start with [`decide()`], then [`state::Instance::evolve`].

pub mod command;
mod compiled;
mod decide;
pub mod event;
pub mod forms;
pub mod gate;
mod machine;
mod signals;
pub mod state;
mod tasks;
pub mod view;

pub use command::{Actor, Command, Context, OPERATOR, People, Rejection, RejectionKind, SYSTEM};
pub use decide::{decide, decide_with, replay};
pub use event::{InstanceEvent, Rule, TaskStatus, TimerPurpose, TimerSet, Verdict};
pub use machine::Memo;
pub use state::{Failure, Instance, Status};
pub use view::View;

#[cfg(test)]
mod tests;
