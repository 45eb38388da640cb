//! Function code as Lambda receives it: a zip, built deterministically from a directory (or a
//! prebuilt zip read as is), and its SHA-256 in the form Lambda reports as `CodeSha256`. Runs
//! before the plan, so `lmi plan` shows code changes; never talks to AWS.
//!
//! Deterministic means the same files always give the same bytes: entries sorted by path,
//! every timestamp 1980-01-01 00:00 (the zip epoch), permissions 0644 or 0755 (executable
//! bits kept, since a `provided.al2023` `bootstrap` must stay executable), no extra fields.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

use crate::model::{Code, Function, Stack};

/// Lambda's limit for a zip uploaded in the request (CreateFunction/UpdateFunctionCode
/// `ZipFile`). See: https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
pub const DIRECT_UPLOAD_LIMIT: u64 = 50 * 1024 * 1024;

/// A function's code, ready to upload.
#[derive(Debug, Clone)]
pub struct Package {
    pub zip: Arc<Vec<u8>>,
    /// Base64 of the SHA-256 of `zip`: Lambda's `CodeSha256`.
    pub sha256: String,
}

impl Package {
    pub fn from_bytes(zip: Vec<u8>) -> Package {
        let sha256 = aws_smithy_types::base64::encode(Sha256::digest(&zip));
        Package {
            zip: Arc::new(zip),
            sha256,
        }
    }
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PackageError {
    #[error("build of function `{function}` failed: `{command}` {status}")]
    #[diagnostic(
        code(lmi::package::build_failed),
        help("its output is above; run it yourself in {dir} to debug")
    )]
    Build {
        function: String,
        command: String,
        status: String,
        dir: String,
    },
    #[error("can't package function `{function}`: {path}: {message}")]
    #[diagnostic(code(lmi::package::io))]
    Io {
        function: String,
        path: String,
        message: String,
    },
    #[error(
        "the code of function `{function}` is {size} bytes zipped, over Lambda's direct-upload limit of {limit} bytes (50 MB)"
    )]
    #[diagnostic(
        code(lmi::package::too_large),
        help(
            "make the code smaller (leave out dev dependencies, tests, source maps), or move dependencies to a Lambda layer"
        )
    )]
    TooLarge {
        function: String,
        size: u64,
        limit: u64,
    },
}

/// Builds (if asked) and packages every function, keyed by function name. Functions sharing a
/// code path and build command are built and zipped once.
pub fn package_stack(stack: &Stack) -> Result<BTreeMap<String, Package>, PackageError> {
    let mut done: BTreeMap<(PathBuf, Option<String>), Package> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for function in &stack.functions {
        let key = (
            code_path(&function.code).to_path_buf(),
            function.build.clone(),
        );
        let package = match done.get(&key) {
            Some(p) => p.clone(),
            None => {
                let p = package_function(function)?;
                done.insert(key, p.clone());
                p
            }
        };
        out.insert(function.name.clone(), package);
    }
    Ok(out)
}

fn code_path(code: &Code) -> &Path {
    match code {
        Code::Directory(p) | Code::Zip(p) => p,
    }
}

/// Runs the function's build command, then zips (or reads) its code.
pub fn package_function(function: &Function) -> Result<Package, PackageError> {
    let path = code_path(&function.code);
    if let Some(command) = &function.build {
        build(function, command, path)?;
    }
    let io = |path: &Path, e: std::io::Error| PackageError::Io {
        function: function.name.clone(),
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let bytes = match &function.code {
        Code::Directory(dir) => zip_directory(dir).map_err(|e| io(dir, e))?,
        Code::Zip(file) => std::fs::read(file).map_err(|e| io(file, e))?,
    };
    if bytes.len() as u64 > DIRECT_UPLOAD_LIMIT {
        return Err(PackageError::TooLarge {
            function: function.name.clone(),
            size: bytes.len() as u64,
            limit: DIRECT_UPLOAD_LIMIT,
        });
    }
    Ok(Package::from_bytes(bytes))
}

/// Runs `command` with `sh -c` in the code's directory (for a zip: the zip's directory), its
/// output passed through to stderr so the user sees it, since stdout is for results.
fn build(function: &Function, command: &str, path: &Path) -> Result<(), PackageError> {
    let dir = match &function.code {
        Code::Directory(_) => path,
        Code::Zip(_) => path.parent().unwrap_or(Path::new(".")),
    };
    // A directory the build is about to create doesn't exist yet: run in its parent.
    let dir = if dir.is_dir() {
        dir
    } else {
        dir.parent().unwrap_or(Path::new("."))
    };
    eprintln!("building function `{}`: {command}", function.name);
    let status = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| PackageError::Io {
            function: function.name.clone(),
            path: dir.display().to_string(),
            message: format!("can't run `sh -c {command}`: {e}"),
        })?;
    if status.success() {
        return Ok(());
    }
    Err(PackageError::Build {
        function: function.name.clone(),
        command: command.to_string(),
        status: match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => "was killed by a signal".into(),
        },
        dir: dir.display().to_string(),
    })
}

/// Zips a directory deterministically; see the module comment.
pub fn zip_directory(dir: &Path) -> std::io::Result<Vec<u8>> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, path) in files {
        let mode = file_mode(&path)?;
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(mode);
        zip.start_file(name, options)
            .map_err(std::io::Error::other)?;
        zip.write_all(&std::fs::read(&path)?)?;
    }
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}

/// Every regular file under `dir` (symlinks followed), as (zip name with `/`, path).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            collect(root, &path, out)?;
        } else if meta.is_file() {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            out.push((name, path));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn file_mode(path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    Ok(if mode & 0o111 != 0 { 0o755 } else { 0o644 })
}

#[cfg(not(unix))]
fn file_mode(_path: &Path) -> std::io::Result<u32> {
    Ok(0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn same_files_give_the_same_bytes_whatever_their_times_and_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), "index.mjs", "export const handler = 1;");
        write(a.path(), "lib/x.js", "x");
        // Written in the other order, a moment later.
        write(b.path(), "lib/x.js", "x");
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(b.path(), "index.mjs", "export const handler = 1;");
        let za = Package::from_bytes(zip_directory(a.path()).unwrap());
        let zb = Package::from_bytes(zip_directory(b.path()).unwrap());
        assert_eq!(za.sha256, zb.sha256);
        write(b.path(), "index.mjs", "export const handler = 2;");
        let zc = Package::from_bytes(zip_directory(b.path()).unwrap());
        assert_ne!(za.sha256, zc.sha256);
    }

    #[test]
    fn entries_are_sorted_with_fixed_metadata() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b.txt", "b");
        write(dir.path(), "a/z.txt", "z");
        let bytes = zip_directory(dir.path()).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().into_owned())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let entry = archive.by_name("a/z.txt").unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o644));
        assert_eq!(entry.last_modified(), Some(zip::DateTime::default()));
    }

    fn function(code: Code, build: Option<&str>) -> Function {
        Function {
            name: "f".into(),
            aws_name: "s-f".into(),
            runtime: crate::model::Runtime::parse("nodejs22.x").unwrap(),
            handler: "index.handler".into(),
            code,
            build: build.map(str::to_string),
            memory_mb: 128,
            timeout_s: 3,
            environment: BTreeMap::new(),
            architecture: crate::model::Architecture::X86_64,
            tracing: false,
            role: crate::model::Role::Create { name: "r".into() },
            compute: crate::model::Compute::Default,
        }
    }

    #[test]
    fn the_build_runs_first_in_the_code_directory_and_its_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let code = Code::Directory(dir.path().to_path_buf());
        let built = package_function(&function(code.clone(), Some("echo built > out.txt")));
        assert!(built.is_ok(), "{built:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
            "built\n"
        );
        let failed = package_function(&function(code, Some("echo oops >&2; exit 3")));
        let message = failed.unwrap_err().to_string();
        assert!(message.contains("exited with status 3"), "{message}");
        assert!(message.contains("exit 3"), "{message}");
    }

    #[test]
    fn a_zip_over_the_direct_upload_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.zip");
        // Sparse: no 50 MB written to disk.
        std::fs::File::create(&path)
            .unwrap()
            .set_len(DIRECT_UPLOAD_LIMIT + 1)
            .unwrap();
        let error = package_function(&function(Code::Zip(path), None)).unwrap_err();
        assert!(matches!(error, PackageError::TooLarge { .. }), "{error}");
        assert!(error.to_string().contains("50 MB"), "{error}");
    }

    #[test]
    fn the_sha_is_base64_like_lambdas() {
        // sha256("") in base64, as Lambda would report it for an empty upload.
        let p = Package::from_bytes(Vec::new());
        assert_eq!(p.sha256, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
    }
}
