//! The loaded workflow definitions: the current files by workflow id, and every definition an
//! instance pins, by content hash (including old versions read back from the log).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use signoff_core::workflow::{Definition, Loaded, Problem, Trigger, load};

use crate::error::RuntimeError;

/// Files in a workflows folder that are not definitions.
const NOT_DEFINITIONS: [&str; 2] = ["people.yaml", "people.yml"];

/// The definition files of a folder: its `*.yaml` / `*.yml` files but the directory file, sorted
/// (not recursive).
///
/// # Errors
/// The folder cannot be read.
pub fn definition_files(dir: &Path) -> Result<Vec<PathBuf>, RuntimeError> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| RuntimeError::Io {
            path: dir.display().to_string(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml" || e == "yml")
                && p.file_name()
                    .is_some_and(|n| !NOT_DEFINITIONS.iter().any(|x| n == *x))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// The definitions a runtime knows.
#[derive(Default)]
pub struct Definitions {
    by_id: HashMap<String, Arc<Loaded>>,
    by_hash: HashMap<String, Arc<Loaded>>,
    /// The problems of the files left out by [`Definitions::load_dir_skipping`].
    skipped: Vec<Problem>,
}

impl Definitions {
    /// Loads every `*.yaml` / `*.yml` file of `dir` (not recursive). A missing folder gives no
    /// definitions.
    ///
    /// # Errors
    /// [`RuntimeError::Invalid`] with every problem of every file, or an IO error.
    pub fn load_dir(dir: &Path) -> Result<Self, RuntimeError> {
        let out = Self::load_dir_skipping(dir)?;
        if !out.skipped.is_empty() {
            return Err(RuntimeError::Invalid(out.skipped));
        }
        Ok(out)
    }

    /// Loads every definition file of `dir` that is valid, and leaves out each file with a
    /// problem (its own, or against the others: a trigger naming a workflow left out), so that
    /// one broken file does not stop the workflows that are fine. What was left out, and why,
    /// is [`Definitions::skipped`].
    ///
    /// # Errors
    /// An IO error.
    pub fn load_dir_skipping(dir: &Path) -> Result<Self, RuntimeError> {
        let mut out = Self::default();
        if !dir.exists() {
            return Ok(out);
        }
        let mut loaded = Vec::new();
        for path in definition_files(dir)? {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| RuntimeError::Io {
                path: name.clone(),
                source,
            })?;
            match load(&name, &text) {
                Ok(one) => loaded.push((name, Arc::new(one))),
                Err(mut p) => out.skipped.append(&mut p),
            }
        }
        // Each round leaves out the files the cross-checks fault; those left may then fault
        // others (a trigger on a workflow just left out), until none does.
        loop {
            let all: Vec<(&str, &Definition)> = loaded
                .iter()
                .map(|(name, l)| (name.as_str(), &l.definition))
                .collect();
            let problems = cross_check(&all);
            if problems.is_empty() {
                break;
            }
            let before = loaded.len();
            loaded.retain(|(name, _)| !problems.iter().any(|p| p.file == *name));
            out.skipped.extend(problems);
            if loaded.len() == before {
                // A problem that names no file of the folder: nothing can be left out for it.
                break;
            }
        }
        for (_, one) in loaded {
            out.insert(one, true);
        }
        Ok(out)
    }

    /// The problems of the definition files left out (empty when every file loaded).
    #[must_use]
    pub fn skipped(&self) -> &[Problem] {
        &self.skipped
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

    /// The workflows with a trigger on `workflow` reaching `step` or ending with `outcome`,
    /// each with the first such trigger (one instance of each is started).
    #[must_use]
    pub fn triggered_by(
        &self,
        workflow: &str,
        step: Option<&str>,
        outcome: Option<&str>,
    ) -> Vec<(String, Trigger)> {
        let mut found: Vec<(String, Trigger)> = self
            .by_id
            .values()
            .filter_map(|l| {
                let trigger = l.definition.triggers.iter().find(|t| {
                    t.on.as_ref().is_some_and(|on| {
                        on.workflow.as_str() == workflow
                            && match (&on.step, &on.outcome) {
                                (Some(s), _) => Some(s.as_str()) == step,
                                (None, Some(o)) => Some(o.as_str()) == outcome,
                                (None, None) => false,
                            }
                    })
                })?;
                Some((l.definition.id.value.clone(), trigger.clone()))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }
}

/// The problems between definitions of one folder: two files with one workflow id, a
/// `start_workflow` or a trigger naming a workflow that is not there, a trigger on a step or an
/// outcome that workflow does not have.
#[must_use]
pub fn cross_check(all: &[(&str, &Definition)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (file, def) in all {
        if let Some(first) = seen.insert(def.id.value.as_str(), file) {
            problems.push(
                Problem::new(
                    file,
                    def.id.at,
                    format!(
                        "workflow id {:?} is defined by another file too",
                        def.id.value
                    ),
                )
                .hint(format!(
                    "{first} defines it first; give each workflow its own id"
                )),
            );
        }
    }
    let ids = || {
        let mut ids: Vec<&str> = seen.keys().copied().collect();
        ids.sort_unstable();
        ids.join(", ")
    };
    let find = |id: &str| all.iter().find(|(_, d)| d.id.value == id).map(|(_, d)| *d);
    for (file, def) in all {
        for step in &def.steps {
            if let Some(start) = &step.start_workflow
                && find(&start.workflow.value).is_none()
            {
                problems.push(
                    Problem::new(
                        file,
                        start.workflow.at,
                        format!(
                            "step {:?} starts workflow {:?}, which no file of this folder defines",
                            step.id.value, start.workflow.value
                        ),
                    )
                    .hint(format!("the workflows are: {}", ids())),
                );
            }
        }
        for on in def.triggers.iter().filter_map(|t| t.on.as_ref()) {
            let Some(other) = find(&on.workflow.value) else {
                problems.push(
                    Problem::new(
                        file,
                        on.workflow.at,
                        format!(
                            "a trigger waits for workflow {:?}, which no file of this folder defines",
                            on.workflow.value
                        ),
                    )
                    .hint(format!("the workflows are: {}", ids())),
                );
                continue;
            };
            if let Some(step) = &on.step
                && other.step(&step.value).is_none()
            {
                problems.push(Problem::new(
                    file,
                    step.at,
                    format!(
                        "a trigger waits for step {:?} of {:?}, which has no such step",
                        step.value, on.workflow.value
                    ),
                ));
            }
            if let Some(outcome) = &on.outcome {
                let outcomes: Vec<&str> = other
                    .steps
                    .iter()
                    .filter_map(|s| s.end.as_ref().map(|e| e.outcome.value.as_str()))
                    .collect();
                if !outcomes.contains(&outcome.value.as_str()) {
                    problems.push(
                        Problem::new(
                            file,
                            outcome.at,
                            format!(
                                "a trigger waits for outcome {:?} of {:?}, which never ends so",
                                outcome.value, on.workflow.value
                            ),
                        )
                        .hint(format!("its outcomes are: {}", outcomes.join(", "))),
                    );
                }
            }
        }
    }
    problems
}
