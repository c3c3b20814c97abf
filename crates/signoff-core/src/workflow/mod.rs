//! Workflow definitions: the language ([`model`]) and its JSON Schema for editors ([`schema`]),
//! reading a file ([`parse`]; [`check_text`] is what `signoff validate` runs), the checks a
//! definition must pass before it runs ([`validate`]), and the expressions in it ([`expr`]).
//!
//! A definition is only ever used through [`Loaded`]: parsed, validated, with its expressions
//! compiled and its content hash computed, so the engine never meets a broken one.

pub mod duration;
pub mod expr;
pub mod located;
pub mod model;
pub mod parse;
pub mod schema;
pub mod validate;

pub use duration::Span;
pub use located::{Located, Position};
pub use model::*;
pub use parse::{Loaded, Problem, check_text, load};
