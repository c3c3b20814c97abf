//! The definitions the repository ships have no problem at all.

use signoff_core::workflow::check_text;

use super::yaml_files;

#[test]
fn every_shipped_workflow_has_no_problem() {
    let files: Vec<_> = yaml_files("workflows")
        .into_iter()
        .filter(|(name, _)| !name.ends_with("/people.yaml"))
        .collect();
    assert!(files.len() >= 5, "the shipped workflows are missing");
    let problems: Vec<String> = files
        .iter()
        .flat_map(|(name, text)| check_text(name, text))
        .map(|p| p.to_string())
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
