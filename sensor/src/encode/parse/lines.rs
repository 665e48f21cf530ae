//! Audit text read as a stream, line by line, in the memory of one line: a log of any size, or
//! one with no line end at all, is parsed in bounded memory.

use std::io::{self, BufRead, ErrorKind};

use super::{parse_line, ParseError, Record};

/// The longest line read (64 KiB); longer ones are skipped and counted. auditd writes at most
/// MAX_AUDIT_MESSAGE_LENGTH (8970) bytes per record (libaudit), the kernel less; the sensor's
/// longest, an ANOM_LINK record with four hex-encoded paths of 4352 bytes, is under 36 KiB.
pub const MAX_LINE: usize = 64 << 10;

/// Why a log could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("reading")]
    Io(#[from] io::Error),
}

/// The records of a log, in order, as an iterator that ends at the first error. Empty lines are
/// skipped, as [`super::parse_log`] does, and so are lines over [`MAX_LINE`] (counted in
/// [`LogReader::long_lines`]); a NUL byte, which audit text never holds, is an error at once (so
/// `/dev/zero` ends at its first byte rather than as one endless line).
pub struct LogReader<R> {
    inner: R,
    line: Vec<u8>,
    /// 1-based number of the last line read.
    number: usize,
    /// Lines longer than [`MAX_LINE`], skipped.
    pub long_lines: u64,
    done: bool,
}

impl<R: BufRead> LogReader<R> {
    pub fn new(inner: R) -> Self {
        LogReader {
            inner,
            line: Vec::new(),
            number: 0,
            long_lines: 0,
            done: false,
        }
    }

    /// The next line into `self.line`, without its `\n`: `Some(true)`, `Some(false)` for a line
    /// over [`MAX_LINE`] (skipped, and not kept), `None` at the end.
    fn read_line(&mut self) -> Result<Option<bool>, LogError> {
        self.line.clear();
        let (mut long, mut any) = (false, false);
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if buf.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (take, end) = match buf.iter().position(|&b| b == b'\n' || b == 0) {
                Some(i) if buf[i] == 0 => {
                    return Err(ParseError::Line {
                        line: self.number + 1,
                        error: Box::new(ParseError::Header(
                            "a NUL byte, which audit text never holds",
                        )),
                    }
                    .into())
                }
                Some(i) => (i, true),
                None => (buf.len(), false),
            };
            if !long {
                if self.line.len() + take > MAX_LINE {
                    long = true;
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(&buf[..take]);
                }
            }
            self.inner.consume(take + usize::from(end));
            if end {
                break;
            }
        }
        self.number += 1;
        if long {
            self.long_lines += 1;
        }
        Ok(Some(!long))
    }
}

impl<R: BufRead> Iterator for LogReader<R> {
    type Item = Result<Record, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.read_line() {
                Ok(None) => self.done = true,
                Ok(Some(false)) => {}
                Ok(Some(true)) if self.line.is_empty() || self.line == b"\r" => {}
                Ok(Some(true)) => {
                    let parsed = parse_line(&self.line).map_err(|e| ParseError::Line {
                        line: self.number,
                        error: Box::new(e),
                    });
                    self.done = parsed.is_err();
                    return Some(parsed.map_err(LogError::from));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}
