//! The directory of people and the roles they hold.
//!
//! People come from a file (`people.yaml`), but the engine never trusts the file's current state
//! for the past: loading a changed file appends the differences to the log's `directory` stream as
//! events ([`DirectoryEvent`]), and [`Directory`] is the state folded from them. Every grant and
//! revocation is therefore a dated fact, and an auditor can answer "did Alice hold the `dpo` role
//! when she approved?" by replaying the stream up to that moment.
//!
//! Start with [`DirectoryFile::parse`], then [`Directory::diff`] and [`Directory::apply`].

mod event;
mod file;
mod state;

pub use event::{DirectoryEvent, Person, Profile, TYPES};
pub use file::{DirectoryFile, MAX_DIRECTORY_BYTES, MAX_ID_CHARS};
pub use state::Directory;

#[cfg(test)]
mod tests;
