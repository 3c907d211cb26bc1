//! Generates the prost types of `protos/` without a system `protoc`: `protox`
//! (a protobuf compiler written in Rust) parses the schema into a descriptor
//! set, which prost-build turns into Rust.

use std::path::Path;

const ROOT: &str = "protos";
const ENTRY: &str = "perfetto/trace/trace.proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    rerun_if_changed(Path::new(ROOT))?;
    let descriptors = protox::compile([ENTRY], [ROOT])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}

/// Cargo only watches a directory's own entries, so every file is listed.
fn rerun_if_changed(dir: &Path) -> std::io::Result<()> {
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rerun_if_changed(&path)?;
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    Ok(())
}
