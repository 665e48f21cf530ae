//! Just enough JSON to read `bpftool prog show --json` (xtask keeps to few dependencies, see
//! main.rs): values, arrays and objects, string escapes; numbers are kept as f64, which holds
//! every u64 bpftool prints for a program's id and counters up to 2^53 exactly.

use anyhow::{bail, ensure, Context, Result};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub(crate) fn parse(text: &str) -> Result<Json> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        ensure!(p.i == p.s.len(), "JSON: trailing text at byte {}", p.i);
        Ok(v)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Num(n) if *n >= 0.0 && n.fract() == 0.0 => Some(*n as u64),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_array(&self) -> &[Json] {
        match self {
            Json::Arr(v) => v,
            _ => &[],
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Result<u8> {
        self.ws();
        self.s.get(self.i).copied().context("JSON: unexpected end")
    }

    fn expect(&mut self, word: &str) -> Result<()> {
        ensure!(
            self.s[self.i..].starts_with(word.as_bytes()),
            "JSON: expected {word} at byte {}",
            self.i
        );
        self.i += word.len();
        Ok(())
    }

    fn value(&mut self) -> Result<Json> {
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => Ok(Json::Str(self.string()?)),
            b't' => self.expect("true").map(|()| Json::Bool(true)),
            b'f' => self.expect("false").map(|()| Json::Bool(false)),
            b'n' => self.expect("null").map(|()| Json::Null),
            _ => self.number(),
        }
    }

    fn object(&mut self) -> Result<Json> {
        self.i += 1;
        let mut fields = Vec::new();
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok(Json::Obj(fields));
        }
        loop {
            ensure!(
                self.peek()? == b'"',
                "JSON: expected a key at byte {}",
                self.i
            );
            let key = self.string()?;
            ensure!(self.peek()? == b':', "JSON: expected : at byte {}", self.i);
            self.i += 1;
            fields.push((key, self.value()?));
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Ok(Json::Obj(fields));
                }
                _ => bail!("JSON: expected , or }} at byte {}", self.i),
            }
        }
    }

    fn array(&mut self) -> Result<Json> {
        self.i += 1;
        let mut items = Vec::new();
        if self.peek()? == b']' {
            self.i += 1;
            return Ok(Json::Arr(items));
        }
        loop {
            items.push(self.value()?);
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                _ => bail!("JSON: expected , or ] at byte {}", self.i),
            }
        }
    }

    fn string(&mut self) -> Result<String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = *self.s.get(self.i).context("JSON: unterminated string")?;
            self.i += 1;
            match b {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = *self.s.get(self.i).context("JSON: unterminated escape")?;
                    self.i += 1;
                    let c = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4).context("JSON: short \\u")?;
                            self.i += 4;
                            let code = u32::from_str_radix(std::str::from_utf8(hex)?, 16)?;
                            // A surrogate half (bpftool prints none) becomes U+FFFD.
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        other => other as char,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(b),
            }
        }
    }

    fn number(&mut self) -> Result<Json> {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|b| b.is_ascii_digit() || b"+-.eE".contains(b))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i])?;
        let n = text
            .parse::<f64>()
            .with_context(|| format!("JSON: bad value at byte {start}"))?;
        Ok(Json::Num(n))
    }
}

#[cfg(test)]
mod tests {
    use super::Json;

    #[test]
    fn bpftools_program_list_is_read() {
        let text = r#"[{"id":18087,"type":"tracepoint","name":"sys_enter_execv","tag":"e859",
            "gpl_compatible":true,"run_time_ns":7962,"run_cnt":14,"map_ids":[18364,18365],
            "pids":[{"pid":26580,"comm":"bpf\"trace\u00e9"}],"btf_id":null},{}]"#;
        let v = Json::parse(text).unwrap();
        let progs = v.as_array();
        assert_eq!(progs.len(), 2);
        let p = &progs[0];
        assert_eq!(p.get("id").and_then(Json::as_u64), Some(18087));
        assert_eq!(
            p.get("name").and_then(Json::as_str),
            Some("sys_enter_execv")
        );
        assert_eq!(p.get("run_cnt").and_then(Json::as_u64), Some(14));
        assert_eq!(p.get("gpl_compatible"), Some(&Json::Bool(true)));
        assert_eq!(p.get("map_ids").map(|m| m.as_array().len()), Some(2));
        let pid = &p.get("pids").unwrap().as_array()[0];
        assert_eq!(pid.get("comm").and_then(Json::as_str), Some("bpf\"traceé"));
        assert_eq!(p.get("btf_id"), Some(&Json::Null));
        assert!(progs[1].get("id").is_none());
        assert_eq!(Json::parse(" [ ] ").unwrap(), Json::Arr(vec![]));
        assert!(Json::parse("[1,").is_err());
        assert!(Json::parse("{\"a\":1} x").is_err());
        assert_eq!(Json::parse("-1.5e2").unwrap(), Json::Num(-150.0));
    }
}
