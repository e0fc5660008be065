fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc, so a fresh machine needs no system package.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    // The descriptor set feeds the hub's gRPC server reflection (grpcurl).
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("isac_v1_descriptor.bin"))
        .compile_protos(&["isac/v1/isac.proto", "isac/v1/federation.proto"], &["."])?;
    println!("cargo:rerun-if-changed=isac/v1/isac.proto");
    println!("cargo:rerun-if-changed=isac/v1/federation.proto");
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}
