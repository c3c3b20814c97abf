//! A real SMTP server on loopback for tests (aiosmtpd, `smtp_sink.py`), for this crate's and
//! the CLI's: `Sink::start(&python()?)`. Python with aiosmtpd is found through
//! `SIGNOFF_TEST_AIOSMTPD` (an interpreter; default `~/.cache/signoff-aiosmtpd-venv/bin/python`,
//! which `.ci/run` makes). Built with the `sink` feature only.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test harness: failing loudly is its job

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The interpreter that has aiosmtpd, or `None` (skipped; a failure under CI).
pub fn python() -> Option<PathBuf> {
    let python = std::env::var_os("SIGNOFF_TEST_AIOSMTPD").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/signoff-aiosmtpd-venv/bin/python")
        },
        PathBuf::from,
    );
    let works = Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have aiosmtpd for {} (python3 -m venv ~/.cache/signoff-aiosmtpd-venv && \
         ~/.cache/signoff-aiosmtpd-venv/bin/pip install 'aiosmtpd==1.4.*')",
        python.display()
    );
    eprintln!(
        "SKIPPED: no aiosmtpd at {}; email cases not run",
        python.display()
    );
    None
}

/// A real SMTP server on a free loopback port, writing what it accepts to a folder.
pub struct Sink {
    process: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Sink {
    /// Starts it with `python` (see [`python`]).
    ///
    /// # Panics
    /// It does not start.
    #[must_use]
    pub fn start(python: &Path) -> Self {
        use std::io::BufRead as _;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut process = Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/smtp_sink.py"))
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let mut ready = String::new();
        std::io::BufReader::new(process.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "the SMTP sink did not start");
        Self { process, port, dir }
    }

    /// Makes every RCPT answer 451, or stops it.
    ///
    /// # Panics
    /// The flag file cannot be written or removed.
    pub fn busy(&self, busy: bool) {
        let flag = self.dir.path().join("busy");
        if busy {
            std::fs::write(flag, "").unwrap();
        } else {
            std::fs::remove_file(flag).unwrap();
        }
    }

    /// Makes RCPT for `address` answer 550.
    ///
    /// # Panics
    /// The flag file cannot be written.
    pub fn refuse(&self, address: &str) {
        std::fs::write(self.dir.path().join(format!("refuse-{address}")), "").unwrap();
    }

    /// The messages accepted, by recipient, in order: the raw message and how Python's email
    /// package reads it (`headers`, `plain`, `html`).
    ///
    /// # Panics
    /// Its folder cannot be read.
    #[must_use]
    pub fn received(&self) -> Vec<(String, String, serde_json::Value)> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".eml") && !n.starts_with('.'))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|name| {
                let to = name[5..name.len() - 4].to_owned();
                let text = std::fs::read_to_string(self.dir.path().join(&name)).unwrap();
                let read =
                    std::fs::read_to_string(self.dir.path().join(name.replace(".eml", ".json")))
                        .unwrap();
                (to, text, serde_json::from_str(&read).unwrap())
            })
            .collect()
    }

    /// Its address, as `SIGNOFF_SMTP_URL` takes it.
    #[must_use]
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}
