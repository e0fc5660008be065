fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A vendored protoc, so a fresh machine needs no system package.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure().compile_protos(&["isac/v1/isac.proto"], &["."])?;
    println!("cargo:rerun-if-changed=isac/v1/isac.proto");
    Ok(())
}
