//! Files generated from the code, checked against it.

/// Checks that a file generated from the code (`docs/metrics.md`, the OpenAPI document)
/// is what the code makes today, so documentation cannot drift from what exists.
///
/// With `ISPVM_UPDATE_DOCS=1` the file is rewritten instead. `path` is relative to the
/// workspace root.
pub fn assert_generated_file(path: &str, rendered: &str) {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    if std::env::var_os("ISPVM_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(&full, rendered)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", full.display()));
        return;
    }
    let on_disk = std::fs::read_to_string(&full).unwrap_or_default();
    if on_disk != rendered {
        let first = on_disk
            .lines()
            .zip(rendered.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| on_disk.lines().count().min(rendered.lines().count()));
        panic!(
            "{path} is stale (first difference at line {}); regenerate it with ISPVM_UPDATE_DOCS=1 cargo test",
            first + 1
        );
    }
}
