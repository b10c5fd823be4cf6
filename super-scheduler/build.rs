//! Generates the prost messages and the tonic client and server of the super-scheduler's gRPC
//! contract (`proto/scheduler.proto`).

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let file = root.join("scheduler.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    tonic_prost_build::configure().compile_protos(&[file], &[root])
}
