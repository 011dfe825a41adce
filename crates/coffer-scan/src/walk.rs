//! Scanning files and directories: a parallel walk that honors `.gitignore` (unless told not to),
//! includes dotfiles, and skips binary files, images and lockfiles.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::{Error, Finding, Scanner};

/// How to walk.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Scan files `.gitignore` excludes too.
    pub no_ignore: bool,
    /// Files larger than this are skipped (bytes).
    pub max_file_size: u64,
    /// Worker threads (0: one per core).
    pub threads: usize,
}

impl Default for WalkOptions {
    fn default() -> Self {
        WalkOptions { no_ignore: false, max_file_size: 64 << 20, threads: 0 }
    }
}

/// What a scan found, and how much it read.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Findings, sorted by file, line and column.
    pub findings: Vec<Finding>,
    /// Files read.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// Extensions of files that hold no text worth scanning.
const SKIP_EXTENSIONS: &[&str] = &[
    "png",
    "jpg",
    "jpeg",
    "gif",
    "bmp",
    "ico",
    "webp",
    "tif",
    "tiff",
    "avif",
    "heic",
    "psd",
    "svgz",
    "woff",
    "woff2",
    "ttf",
    "otf",
    "eot",
    "zip",
    "gz",
    "tgz",
    "bz2",
    "xz",
    "zst",
    "7z",
    "rar",
    "tar",
    "jar",
    "war",
    "whl",
    "pdf",
    "mp3",
    "mp4",
    "m4a",
    "mov",
    "avi",
    "mkv",
    "webm",
    "wav",
    "flac",
    "ogg",
    "exe",
    "dll",
    "so",
    "dylib",
    "a",
    "o",
    "obj",
    "class",
    "pyc",
    "pyo",
    "wasm",
    "bin",
    "dat",
    "db",
    "sqlite",
    "sqlite3",
    "parquet",
    "avro",
    "npy",
    "npz",
    "pkl",
    "pt",
    "onnx",
    "safetensors",
    "iso",
    "dmg",
    "deb",
    "rpm",
    "lockb",
];

fn skip_by_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| SKIP_EXTENSIONS.iter().any(|s| s.eq_ignore_ascii_case(e)))
}

/// The name a finding reports for `path` found under `root`: relative to a directory root, or the root
/// itself when it is a file. Always `/`-separated.
fn display_path(root: &Path, path: &Path, root_is_file: bool) -> String {
    let rel = if root_is_file { path } else { path.strip_prefix(root).unwrap_or(path) };
    let s = rel.to_string_lossy().replace('\\', "/");
    if s.is_empty() {
        path.to_string_lossy().into_owned()
    } else {
        s
    }
}

/// Scans files and directories. Unreadable files are skipped; a root that does not exist is an error.
pub fn scan_paths(scanner: &Scanner, roots: &[PathBuf], opts: &WalkOptions) -> Result<ScanReport, Error> {
    let findings = Mutex::new(Vec::new());
    let files = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    for root in roots {
        let meta = std::fs::metadata(root).map_err(|source| Error::Io { path: root.display().to_string(), source })?;
        let root_is_file = meta.is_file();
        let mut builder = ignore::WalkBuilder::new(root);
        builder
            .hidden(false)
            .parents(true)
            .ignore(!opts.no_ignore)
            .git_ignore(!opts.no_ignore)
            .git_global(!opts.no_ignore)
            .git_exclude(!opts.no_ignore)
            .require_git(false)
            .follow_links(false)
            .max_filesize(Some(opts.max_file_size))
            .threads(opts.threads)
            .filter_entry(|e| e.file_name() != ".git");
        let scan_one = |path: &Path| {
            let name = display_path(root, path, root_is_file);
            if skip_by_extension(path) || (!root_is_file && scanner.is_path_excluded(&name)) {
                return;
            }
            let Ok(data) = std::fs::read(path) else { return };
            files.fetch_add(1, Ordering::Relaxed);
            bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            let found = scanner.scan_bytes(&name, &data);
            if !found.is_empty() {
                if let Ok(mut all) = findings.lock() {
                    all.extend(found);
                }
            }
        };
        if root_is_file {
            scan_one(root);
            continue;
        }
        builder.build_parallel().run(|| {
            Box::new(|entry| {
                if let Ok(entry) = entry {
                    if entry.file_type().is_some_and(|t| t.is_file()) {
                        scan_one(entry.path());
                    }
                }
                ignore::WalkState::Continue
            })
        });
    }
    let mut findings = findings.into_inner().unwrap_or_else(|e| e.into_inner());
    findings.sort_by(|a, b| (&a.file, a.line, a.column, &a.rule).cmp(&(&b.file, b.line, b.column, &b.rule)));
    Ok(ScanReport { findings, files: files.into_inner(), bytes: bytes.into_inner() })
}
