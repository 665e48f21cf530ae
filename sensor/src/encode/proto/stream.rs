//! The `proto` output's framing: each envelope prefixed by its length as a varint, and a reader
//! that turns a truncated or corrupt stream into an error, never a panic or silence.

use std::io::{self, ErrorKind, Read};

use prost::Message;
use sensor_proto::v1;

use super::{envelope, HostInfo, ProtoError, DEFAULT_MAX_MESSAGE_LEN};
use crate::event::Event;

mod bounds;

/// Appends `env` to a stream: its length as a varint, then the message. The tests' framing of an
/// envelope made or edited by hand; the `proto` output writes with [`StreamWriter`].
#[cfg(test)]
pub fn write_delimited(out: &mut Vec<u8>, env: &v1::Envelope) {
    env.encode_length_delimited(out)
        .expect("a Vec<u8> grows as needed, so encoding into it cannot run out of space");
}

/// The `proto` output's writer: each event is moved into its envelope (the stream takes it last,
/// so nothing is copied), and the host header, the same in every envelope, is encoded once. It
/// follows the body: a reader takes a message's fields in any order, so it decodes the envelope
/// with its host, as if the fields had been written in order (a unit test compares the two).
pub struct StreamWriter {
    /// `Envelope.host`, tag and length included.
    host_field: Vec<u8>,
}

impl StreamWriter {
    pub fn new(host: &HostInfo) -> Self {
        let only_host = v1::Envelope {
            host: Some(host.into()),
            ..Default::default()
        };
        StreamWriter {
            host_field: only_host.encode_to_vec(),
        }
    }

    /// Appends `ev`'s envelope to a stream: its length as a varint, then the message.
    pub fn write(&self, out: &mut Vec<u8>, ev: Event) {
        let env = envelope(ev);
        let len = env.encoded_len() + self.host_field.len();
        prost::encoding::encode_varint(len as u64, out);
        env.encode(out)
            .expect("a Vec<u8> grows as needed, so encoding into it cannot run out of space");
        out.extend_from_slice(&self.host_field);
    }
}

/// Reads a stream written by [`StreamWriter`], one envelope per item.
///
/// Reads the length prefix a byte at a time, so give it a buffered reader. A framing error
/// (truncation, a bad or oversized length, an I/O error) ends the iteration, since nothing after
/// it can be trusted to start at a message boundary; a message that is framed correctly but does
/// not decode is reported and the iteration goes on.
pub struct DelimitedReader<R: Read> {
    inner: R,
    /// Bytes consumed so far: the offset that errors report.
    offset: u64,
    max_len: u64,
    done: bool,
}

impl<R: Read> DelimitedReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_max_len(inner, DEFAULT_MAX_MESSAGE_LEN)
    }

    pub fn with_max_len(inner: R, max_len: u64) -> Self {
        DelimitedReader {
            inner,
            offset: 0,
            max_len,
            done: false,
        }
    }

    fn read_byte(&mut self) -> io::Result<Option<u8>> {
        let mut byte = [0u8];
        loop {
            match self.inner.read(&mut byte) {
                Ok(0) => return Ok(None),
                Ok(_) => {
                    self.offset += 1;
                    return Ok(Some(byte[0]));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// `Ok(None)` at a clean end of stream (between messages).
    fn read_len(&mut self) -> Result<Option<u64>, ProtoError> {
        let start = self.offset;
        let mut len = 0u64;
        // A u64 varint is at most ten bytes; the tenth may carry only the top bit.
        for i in 0..10 {
            let b = match self.read_byte()? {
                Some(b) => b,
                None if i == 0 => return Ok(None),
                None => return Err(ProtoError::TruncatedLength { offset: start }),
            };
            if i == 9 && b > 1 {
                return Err(ProtoError::BadLength { offset: start });
            }
            len |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(Some(len));
            }
        }
        Err(ProtoError::BadLength { offset: start })
    }

    fn read_one(&mut self) -> Result<Option<v1::Envelope>, ProtoError> {
        let start = self.offset;
        let Some(len) = self.read_len()? else {
            return Ok(None);
        };
        if len > self.max_len {
            return Err(ProtoError::TooLarge {
                offset: start,
                len,
                max: self.max_len,
            });
        }
        // Grows with the data actually read, never past `len`, so a corrupt length on a short
        // stream cannot make us allocate the whole claimed size up front.
        let mut buf = Vec::new();
        let got = self.read_into(&mut buf, len as usize)? as u64;
        if got < len {
            return Err(ProtoError::Truncated {
                offset: start,
                needed: len,
                got,
            });
        }
        // Before prost expands it: a list of cheap elements decodes a hundredfold larger.
        bounds::check(&buf, start)?;
        v1::Envelope::decode(buf.as_slice())
            .map(Some)
            .map_err(|source| ProtoError::Decode {
                offset: start,
                source,
            })
    }

    /// Reads up to `len` bytes into `buf`, growing it at most twofold per step and to exactly
    /// `len`; returns how many were read (fewer at the end of the stream).
    fn read_into(&mut self, buf: &mut Vec<u8>, len: usize) -> io::Result<usize> {
        while buf.len() < len {
            let start = buf.len();
            let step = (len - start).min(start.max(64 << 10));
            buf.reserve_exact(step);
            buf.resize(start + step, 0);
            let mut filled = start;
            while filled < buf.len() {
                match self.inner.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        buf.truncate(filled);
                        self.offset += (filled - start) as u64;
                        return Err(e);
                    }
                }
            }
            buf.truncate(filled);
            self.offset += (filled - start) as u64;
            if filled < start + step {
                break;
            }
        }
        Ok(buf.len())
    }
}

impl<R: Read> Iterator for DelimitedReader<R> {
    type Item = Result<v1::Envelope, ProtoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_one() {
            Ok(Some(env)) => Some(Ok(env)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                // Framing is intact after a message that does not decode or is out of bounds.
                self.done = !matches!(
                    e,
                    ProtoError::Decode { .. } | ProtoError::InvalidField { .. }
                );
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz_tests;
