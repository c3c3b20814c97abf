//! The loaded workflow definitions: the current files by workflow id, and every definition an
//! instance pins, by content hash (including old versions read back from the log).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use signoff_core::workflow::{Loaded, Problem, load};

use crate::error::RuntimeError;

/// Files in a workflows folder that are not definitions.
const NOT_DEFINITIONS: [&str; 2] = ["people.yaml", "people.yml"];

/// The definitions a runtime knows.
#[derive(Default)]
pub struct Definitions {
    by_id: HashMap<String, Arc<Loaded>>,
    by_hash: HashMap<String, Arc<Loaded>>,
}

impl Definitions {
    /// Loads every `*.yaml` / `*.yml` file of `dir` (not recursive). A missing folder gives no
    /// definitions.
    ///
    /// # Errors
    /// [`RuntimeError::Invalid`] with every problem of every file, or an IO error.
    pub fn load_dir(dir: &Path) -> Result<Self, RuntimeError> {
        let mut out = Self::default();
        if !dir.exists() {
            return Ok(out);
        }
        let io = |source| RuntimeError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "yaml" || e == "yml")
                    && p.file_name()
                        .is_some_and(|n| !NOT_DEFINITIONS.iter().any(|x| n == *x))
            })
            .collect();
        paths.sort();
        let mut problems = Vec::new();
        for path in paths {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| RuntimeError::Io {
                path: name.clone(),
                source,
            })?;
            match load(&name, &text) {
                Ok(loaded) => {
                    let id = loaded.definition.id.value.clone();
                    if out.by_id.contains_key(&id) {
                        problems.push(Problem::new(
                            &name,
                            loaded.definition.id.at,
                            format!("workflow id {id:?} is defined by another file too"),
                        ));
                        continue;
                    }
                    out.insert(Arc::new(loaded), true);
                }
                Err(mut p) => problems.append(&mut p),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(RuntimeError::Invalid(problems))
        }
    }

    /// Adds a definition; `current` makes it the one new instances of its workflow use.
    pub fn insert(&mut self, loaded: Arc<Loaded>, current: bool) {
        if current {
            self.by_id
                .insert(loaded.definition.id.value.clone(), loaded.clone());
        }
        self.by_hash.insert(loaded.hash.clone(), loaded);
    }

    /// Loads a definition recorded in the log (a pinned, possibly old, version).
    ///
    /// # Errors
    /// [`RuntimeError::Invalid`] if the recorded text no longer loads.
    pub fn insert_recorded(&mut self, source: &str) -> Result<Arc<Loaded>, RuntimeError> {
        let hash = signoff_core::workflow::parse::content_hash(source);
        if let Some(loaded) = self.by_hash.get(&hash) {
            return Ok(loaded.clone());
        }
        let loaded =
            Arc::new(load("(recorded definition)", source).map_err(RuntimeError::Invalid)?);
        self.insert(loaded.clone(), false);
        Ok(loaded)
    }

    /// The current definition of a workflow.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<Arc<Loaded>> {
        self.by_id.get(id).cloned()
    }

    /// A definition by content hash.
    #[must_use]
    pub fn by_hash(&self, hash: &str) -> Option<Arc<Loaded>> {
        self.by_hash.get(hash).cloned()
    }

    /// The current definitions, sorted by id.
    #[must_use]
    pub fn list(&self) -> Vec<Arc<Loaded>> {
        let mut all: Vec<_> = self.by_id.values().cloned().collect();
        all.sort_by(|a, b| a.definition.id.value.cmp(&b.definition.id.value));
        all
    }

    /// Ids of the workflows with a trigger on `workflow` reaching `step` or ending with
    /// `outcome`.
    #[must_use]
    pub fn triggered_by(
        &self,
        workflow: &str,
        step: Option<&str>,
        outcome: Option<&str>,
    ) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_id
            .values()
            .filter(|l| {
                l.definition.triggers.iter().any(|t| {
                    t.on.as_ref().is_some_and(|on| {
                        on.workflow.as_str() == workflow
                            && match (&on.step, &on.outcome) {
                                (Some(s), _) => Some(s.as_str()) == step,
                                (None, Some(o)) => Some(o.as_str()) == outcome,
                                (None, None) => false,
                            }
                    })
                })
            })
            .map(|l| l.definition.id.value.clone())
            .collect();
        ids.sort();
        ids
    }
}
