//! The logs `compare` reads, as streams: audit text as it is, the sensor's protobuf turned into
//! audit text one event at a time.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read},
    path::Path,
};

use crate::encode::{
    audit,
    proto::{self, DelimitedReader, ProtoError},
};

/// A kernel audit log (text), read as it is.
pub fn audit_log(path: &Path) -> io::Result<BufReader<File>> {
    File::open(path).map(|f| BufReader::with_capacity(1 << 16, f))
}

/// The sensor's output: audit/enriched text as it is, or a protobuf stream decoded to audit text
/// as it is read, in the memory of one event.
pub fn sensor_log(path: &Path) -> io::Result<Box<dyn BufRead>> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 5];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = &head[..n];
    let input = io::Cursor::new(head.to_vec()).chain(file);
    Ok(if head.is_empty() || head == b"type=" || head == b"node=" {
        Box::new(BufReader::with_capacity(1 << 16, input))
    } else {
        Box::new(AuditText::new(input))
    })
}

/// A protobuf stream as audit text: reads an event when the text of the last one is used up.
/// An envelope this reader does not know (a newer writer's) is left out; anything else that does
/// not decode is an error of kind `InvalidData`, and the end of the text.
pub struct AuditText<R: Read> {
    events: DelimitedReader<BufReader<R>>,
    text: Vec<u8>,
    pos: usize,
}

impl<R: Read> AuditText<R> {
    pub fn new(input: R) -> Self {
        AuditText {
            events: DelimitedReader::new(BufReader::new(input)),
            text: Vec::new(),
            pos: 0,
        }
    }
}

fn invalid(what: &str, e: ProtoError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
}

impl<R: Read> Read for AuditText<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.fill_buf()?.len().min(buf.len());
        buf[..n].copy_from_slice(&self.text[self.pos..self.pos + n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for AuditText<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.text.len() {
            let env = match self.events.next() {
                None => break,
                Some(Ok(env)) => env,
                Some(Err(e)) => return Err(invalid("not a protobuf stream the sensor wrote", e)),
            };
            let event = match proto::from_envelope(env) {
                Ok(ev) => ev,
                Err(ProtoError::UnknownBody { .. }) => continue,
                Err(e) => return Err(invalid("decoding a protobuf record", e)),
            };
            self.text.clear();
            if self.text.capacity() > 1 << 20 {
                // After an exec with megabytes of arguments, back to the size of most events.
                self.text = Vec::new();
            }
            self.pos = 0;
            audit::write_event(&mut self.text, &event, None);
        }
        Ok(&self.text[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.text.len());
    }
}
