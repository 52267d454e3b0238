//! Compiles `proto/` with protox (a protobuf compiler in Rust: a fresh machine needs no
//! `protoc`) and generates the tonic servers and clients, plus the encoded descriptor set that
//! gRPC reflection serves.

use std::{env, error::Error, fs, path::PathBuf};

use prost::Message as _;

const PROTOS: &[&str] = &["metallb/status/v1/status.proto"];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out.join("metallb_status_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    Ok(())
}
