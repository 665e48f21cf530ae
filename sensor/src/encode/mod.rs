//! Encoders: turn normalised [`crate::event::Event`]s into bytes, and back where a format allows
//! it. `audit` is auditd's text (RAW and ENRICHED), `proto` the versioned protobuf stream,
//! `parse` reads audit text back (for `compare` and the golden tests).

pub mod audit;
pub mod parse;
pub mod proto;

use std::io::{self, Read, Write};

/// Why a protobuf stream could not be turned into audit text.
#[derive(Debug, thiserror::Error)]
pub enum TranscodeError {
    /// The framing broke (truncated, bad length, I/O): nothing after it can be trusted.
    #[error(transparent)]
    Read(proto::ProtoError),
    /// A framed message is not an event this reader can rebuild.
    #[error("decoding a record")]
    Event(#[source] proto::ProtoError),
    #[error("writing the text")]
    Write(#[from] io::Error),
}

/// A `proto` output stream back to audit text, event by event, in bounded memory per event. An
/// envelope whose body this reader does not know (a newer writer's) is passed to `skipped` and
/// left out; anything else that does not decode ends the stream with an error.
pub fn proto_to_audit<R: Read, W: Write>(
    input: R,
    out: &mut W,
    names: Option<&dyn audit::Names>,
    mut skipped: impl FnMut(&proto::ProtoError),
) -> Result<(), TranscodeError> {
    let mut buf = Vec::new();
    for item in proto::DelimitedReader::new(io::BufReader::new(input)) {
        let envelope = item.map_err(TranscodeError::Read)?;
        let event = match proto::from_envelope(envelope) {
            Ok(ev) => ev,
            Err(err @ proto::ProtoError::UnknownBody { .. }) => {
                skipped(&err);
                continue;
            }
            Err(err) => return Err(TranscodeError::Event(err)),
        };
        buf.clear();
        audit::write_event(&mut buf, &event, names);
        out.write_all(&buf)?;
    }
    Ok(())
}
