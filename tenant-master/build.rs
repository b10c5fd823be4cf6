//! Generates the prost types of gnostic's OpenAPI v2 document model (`proto/openapiv2`),
//! which `/openapi/v2` is served as when a client asks for protobuf.

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proto");
    let file = root.join("openapiv2/OpenAPIv2.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    prost_build::Config::new().compile_protos(&[file], std::slice::from_ref(&root))?;
    // issue 7: the client of the syncer's contract.
    let syncer = root.join("syncer.proto");
    println!("cargo:rerun-if-changed={}", syncer.display());
    tonic_prost_build::configure().build_server(false).compile_protos(&[syncer], &[root])
}
