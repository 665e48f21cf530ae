//! The sensor's versioned protobuf schema (`sensor/v1/events.proto`) as prost types.

pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/sensor.v1.rs"));
}
