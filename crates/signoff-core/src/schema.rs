//! The registry of event types the log accepts, with their schema versions.

use std::collections::HashMap;

use crate::event::InvalidEvent;

/// Which event types exist and which schema versions of each. The log refuses an event whose
/// type or version is not here, so nothing is recorded that no reader can interpret.
#[derive(Clone, Debug, Default)]
pub struct EventTypes {
    latest: HashMap<String, u32>,
}

impl EventTypes {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `ty` with schema versions `1..=latest`.
    #[must_use]
    pub fn with(mut self, ty: &str, latest: u32) -> Self {
        self.latest.insert(ty.to_owned(), latest.max(1));
        self
    }

    /// Checks that `ty` exists in schema `version`.
    ///
    /// # Errors
    /// [`InvalidEvent::UnknownType`] or [`InvalidEvent::UnknownSchemaVersion`].
    pub fn check(&self, ty: &str, version: u32) -> Result<(), InvalidEvent> {
        match self.latest.get(ty) {
            None => Err(InvalidEvent::UnknownType(ty.to_owned())),
            Some(&latest) if version == 0 || version > latest => {
                Err(InvalidEvent::UnknownSchemaVersion {
                    ty: ty.to_owned(),
                    version,
                    latest,
                })
            }
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_and_versions_are_refused() {
        let types = EventTypes::new().with("a.b", 2);
        assert!(types.check("a.b", 1).is_ok());
        assert!(types.check("a.b", 2).is_ok());
        assert_eq!(
            types.check("a.b", 3).map_err(|e| e.to_string()),
            Err("event type \"a.b\" has no schema version 3 (known: 1 to 2)".to_owned())
        );
        assert!(matches!(
            types.check("a.b", 0),
            Err(InvalidEvent::UnknownSchemaVersion { .. })
        ));
        assert!(matches!(
            types.check("c", 1),
            Err(InvalidEvent::UnknownType(_))
        ));
    }
}
