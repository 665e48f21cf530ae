//! Compiles the schema with protox (a pure-Rust protobuf compiler), so that building needs no
//! system `protoc`.

use std::error::Error;

const PROTO: &str = "sensor/v1/events.proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO}");
    let fds = protox::compile([PROTO], ["."])?;
    prost_build::Config::new()
        // An exec is ten times the size of any other body; boxing it keeps every envelope small.
        .boxed(".sensor.v1.Envelope.body.exec")
        .compile_fds(fds)?;
    Ok(())
}
