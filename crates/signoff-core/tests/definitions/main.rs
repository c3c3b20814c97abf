//! Definition files as `signoff validate` reads them: the corpus of broken definitions under the
//! repository's `tests/definitions/broken/` (each file says, in its leading `# expect:` comments,
//! which problems it has and where), the shipped `workflows/*.yaml` (which have none), and
//! mutations of both, which the checker must answer without panicking.
#![allow(clippy::expect_used, clippy::unwrap_used)] // a failed expectation is a failed test

mod corpus;
mod mutations;
mod shipped;

use std::path::{Path, PathBuf};

/// The repository root (the workspace root, two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `*.yaml` files of a folder of the repository, sorted, with their text.
pub fn yaml_files(folder: &str) -> Vec<(String, String)> {
    let dir = repo_root().join(folder);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = format!("{folder}/{}", path.file_name().unwrap().to_string_lossy());
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, text)
        })
        .collect()
}
