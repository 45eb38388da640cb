//! A benchmark, run on demand: packaging a large code directory (20,000 files, about 100 MB)
//! with lmi's deterministic zip against `zip -r -X` (Info-ZIP, the same deflate level 6), and
//! the ratio of the two times, written to `target/package-bench.json`.
//!
//!     cargo test --test package_bench -- --ignored --nocapture
//!
//! Sizes can be changed with LMI_BENCH_FILES and LMI_BENCH_FILE_BYTES.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Source-like text: words from a small vocabulary in a seeded pseudo-random order, so it
/// compresses about as well as real code does.
fn fill(dir: &Path, files: usize, bytes: usize) {
    const WORDS: &[&str] = &[
        "const",
        "function",
        "return",
        "await",
        "export",
        "import",
        "handler",
        "event",
        "=>",
        "{",
        "}",
        "(",
        ")",
        ";",
        "\n",
        "let",
        "if",
        "else",
        "for",
        "of",
        "context",
        "value",
        "result",
        "error",
        "JSON.stringify",
        "async",
        "new",
        "this",
        "null",
        "true",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..files {
        let sub = dir.join(format!("pkg{:03}/lib{:02}", i % 200, i % 7));
        std::fs::create_dir_all(&sub).unwrap();
        let mut text = String::with_capacity(bytes + 16);
        while text.len() < bytes {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            text.push_str(WORDS[(seed >> 33) as usize % WORDS.len()]);
            text.push(' ');
        }
        std::fs::write(sub.join(format!("file{i}.js")), text).unwrap();
    }
}

fn best_of<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
#[ignore = "a benchmark: minutes of disk work; run with --ignored"]
fn packaging_a_large_directory_against_zip_r_x() {
    let files = env_usize("LMI_BENCH_FILES", 20_000);
    let file_bytes = env_usize("LMI_BENCH_FILE_BYTES", 5 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("code");
    fill(&code, files, file_bytes);

    let mut lmi_size = 0;
    let lmi = best_of(3, || {
        lmi_size = lmi::package::zip_directory(&code).unwrap().len();
    });
    let out = dir.path().join("out.zip");
    let zip = best_of(3, || {
        let _ = std::fs::remove_file(&out);
        let status = Command::new("zip")
            .args(["-q", "-r", "-X"])
            .arg(&out)
            .arg(".")
            .current_dir(&code)
            .status()
            .expect("run zip (Info-ZIP) for the comparison");
        assert!(status.success());
    });
    let zip_size = std::fs::metadata(&out).unwrap().len();
    let ratio = lmi.as_secs_f64() / zip.as_secs_f64();
    let report = serde_json::json!({
        "files": files,
        "input_bytes": files * file_bytes,
        "lmi_seconds": lmi.as_secs_f64(),
        "zip_r_x_seconds": zip.as_secs_f64(),
        "time_ratio_lmi_over_zip": ratio,
        "lmi_zip_bytes": lmi_size,
        "zip_r_x_bytes": zip_size,
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
    });
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/package-bench.json");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "{}", serde_json::to_string_pretty(&report).unwrap()).unwrap();
    println!("{report:#}\nwritten to {}", path.display());
}
