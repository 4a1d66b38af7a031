//! Compiles the protos in `shared/proto` once for every service.
//!
//! A `protoc` on PATH (or named by `PROTOC`) is used when present; a fresh machine has none, so the
//! vendored binary is the fallback and the build needs no install step.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    let have_protoc = std::env::var_os("PROTOC").is_some()
        || std::process::Command::new("protoc")
            .arg("--version")
            .output()
            .is_ok();
    if !have_protoc {
        config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    }

    let proto_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let protos = ["emotion.proto", "scoring.proto", "events.proto"].map(|p| proto_dir.join(p));
    let descriptor = PathBuf::from(std::env::var("OUT_DIR")?).join("descriptor.bin");

    // A candidate's export carries the emotion service's summary as JSON, described in the
    // public API's OpenAPI document.
    let exported = [
        ".emotion.SessionSummary",
        ".emotion.BlinkMetrics",
        ".emotion.TimelinePoint",
        ".emotion.Spell",
    ];
    let mut builder = tonic_prost_build::configure();
    for path in exported {
        builder = builder.type_attribute(path, "#[derive(serde::Serialize, utoipa::ToSchema)]");
    }
    builder
        .file_descriptor_set_path(&descriptor)
        .compile_with_config(config, &protos, std::slice::from_ref(&proto_dir))?;
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    Ok(())
}
