use super::*;

fn kv(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(k).into(),
                String::from_utf8_lossy(v).into(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn syscall_with_enrichment() {
    let line = b"type=SYSCALL msg=audit(1795578021.204:35484): arch=c000003e syscall=59 success=yes exit=0 items=2 tty=(none) comm=\"sleep\" exe=\"/usr/bin/sleep\" key=\"exec\"\x1dARCH=x86_64 SYSCALL=execve AUID=\"unset\" UID=\"root\"\n";
    let r = parse_line(line).unwrap();
    assert_eq!(
        (r.rtype.as_slice(), r.sec, r.msec, r.serial),
        (&b"SYSCALL"[..], 1795578021, 204, 35484)
    );
    assert_eq!(r.node, None);
    assert_eq!(
        kv(&r.fields),
        pairs(&[
            ("arch", "c000003e"),
            ("syscall", "59"),
            ("success", "yes"),
            ("exit", "0"),
            ("items", "2"),
            ("tty", "(none)"),
            ("comm", "\"sleep\""),
            ("exe", "\"/usr/bin/sleep\""),
            ("key", "\"exec\""),
        ])
    );
    assert_eq!(
        kv(&r.enriched),
        pairs(&[
            ("ARCH", "x86_64"),
            ("SYSCALL", "execve"),
            ("AUID", "\"unset\""),
            ("UID", "\"root\"")
        ])
    );
    assert_eq!(r.get(b"comm"), Some(&b"\"sleep\""[..]));
    assert_eq!(r.get_enriched(b"UID"), Some(&b"\"root\""[..]));
    assert_eq!(decode_value(r.get(b"exe").unwrap()), b"/usr/bin/sleep");
}

#[test]
fn auditd_userspace_and_odd_lines() {
    let r = parse_line(b"type=USER_ACCT msg=audit(1.002:22): pid=7728 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:accounting grantors=? acct=\"root\" exe=\"/usr/bin/pamtester\" hostname=10.9.8.7 addr=10.9.8.7 terminal=? res=failed'\x1dUID=\"root\" AUID=\"unset\"").unwrap();
    assert_eq!(r.msec, 2);
    let msg = r.get(b"msg").unwrap();
    assert!(msg.starts_with(b"'op=PAM:accounting") && msg.ends_with(b"res=failed'"));
    assert_eq!(r.fields.len(), 5);
    assert_eq!(decode_value(msg)[..9], b"op=PAM:ac"[..]);
    assert_eq!(r.enriched.len(), 2);

    let r = parse_line(b"type=SOCKADDR msg=audit(1.987:37): saddr=100000000000000000000000\x1dSADDR={ saddr_fam=netlink nlnk-fam=16 nlnk-pid=0 }").unwrap();
    assert_eq!(
        kv(&r.enriched),
        pairs(&[("SADDR", "{ saddr_fam=netlink nlnk-fam=16 nlnk-pid=0 }")])
    );

    // Continuation EXECVE: two spaces after the colon.
    let r = parse_line(b"type=EXECVE msg=audit(1.875:15):  a1[1]=7878").unwrap();
    assert_eq!(kv(&r.fields), pairs(&[("a1[1]", "7878")]));

    // auditd trims the trailing space of an empty body; node= when name_format is set.
    let r = parse_line(b"node=web1 type=EOE msg=audit(1.000:3):").unwrap();
    assert_eq!(
        (r.node.as_deref(), r.rtype.as_slice(), r.fields.len()),
        (Some(&b"web1"[..]), &b"EOE"[..], 0)
    );

    let r = parse_line(b"type=UNKNOWN[1334] msg=audit(1.000:3): avc:  denied  { read } for pid=1")
        .unwrap();
    assert_eq!(r.rtype, b"UNKNOWN[1334]");
    assert_eq!(r.fields.first().unwrap().0, b"avc:");
    assert_eq!(r.get(b"pid"), Some(&b"1"[..]));
}

#[test]
fn malformed_lines_are_errors() {
    for bad in [
        &b""[..],
        b"garbage",
        b"type=DAEMON_ERR op=format-raw msg=NULL res=failed",
        b"type=X msg=audit(1.2): a=1",
        b"type=X msg=audit(x.2:3): a=1",
        b"type=X msg=audit(1.2:3) a=1",
    ] {
        assert!(
            matches!(parse_line(bad), Err(ParseError::Header(_))),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        parse_line(b"type=X msg=audit(1.2:3): a=\"open"),
        Err(ParseError::Unterminated {
            field: "a".into(),
            quote: '"'
        })
    );
    let err = parse_log(b"type=X msg=audit(1.2:3): a=1\n\nbad\n").unwrap_err();
    assert!(matches!(err, ParseError::Line { line: 3, .. }), "{err}");
}

#[test]
fn decode_values() {
    assert_eq!(decode_value(b"\"a b\""), b"a b"); // not produced by the kernel, still inner bytes
    assert_eq!(decode_value(b"\"\""), b"");
    assert_eq!(decode_value(b"'x'"), b"x");
    assert_eq!(decode_value(b"6E6C0A78"), b"nl\nx");
    assert_eq!(decode_value(b"c3a9"), "é".as_bytes());
    assert_eq!(decode_value(b"(null)"), b"(null)");
    assert_eq!(decode_value(b"(none)"), b"(none)");
    assert_eq!(decode_value(b"?"), b"?");
    assert_eq!(decode_value(b"ABC"), b"ABC"); // odd length is not hex
    assert_eq!(decode_value(b"pts0"), b"pts0");
    assert_eq!(decode_value(b""), b"");
}

fn recs(text: &str) -> Vec<Record> {
    parse_log(text.as_bytes()).unwrap()
}

#[test]
fn argv_from_chunks_across_records() {
    let r = recs(
        "type=SYSCALL msg=audit(1.0:5): arch=c000003e\n\
         type=EXECVE msg=audit(1.0:5): argc=4 a0=\"ls\" a1_len=6 a1[0]=6162\n\
         type=EXECVE msg=audit(1.0:5):  a1[1]=6364 a1[2]=6566 a2=\"\" a3_len=5 a3[0]=\"xy\"\n\
         type=EXECVE msg=audit(1.0:5):  a3[1]=\"zzz\"\n",
    );
    let argv = execve_argv(&r).unwrap();
    assert_eq!(argv, [&b"ls"[..], b"abcdef", b"", b"xyzzz"]);
}

#[test]
fn argv_errors_and_truncation() {
    let e = |t: &str| execve_argv(&recs(t)).unwrap_err();
    assert!(matches!(
        e("type=EXECVE msg=audit(1.0:5): a0=\"x\""),
        ParseError::Execve(_)
    ));
    assert!(matches!(
        e("type=EXECVE msg=audit(1.0:5): argc=2 a0=\"x\""),
        ParseError::Execve(_)
    ));
    assert!(matches!(
        e("type=EXECVE msg=audit(1.0:5): argc=2 a1=\"x\" a0=\"y\""),
        ParseError::Execve(_)
    ));
    assert!(matches!(
        e("type=EXECVE msg=audit(1.0:5): argc=1 a0[1]=41"),
        ParseError::Execve(_)
    ));
    assert!(matches!(
        e("type=EXECVE msg=audit(1.0:5): argc=1 a0=4"),
        ParseError::Execve(_)
    ));
    assert!(matches!(
        e("type=EXECVE msg=audit(1.0:5): argc=1 a0[0]=41 a0[2]=41"),
        ParseError::Execve(_)
    ));
    let r = recs(
        "type=EXECVE msg=audit(1.0:5): argc=5 a0=\"x\" sensor_trunc_args=\"4\" sensor_trunc_bytes=\"9\"",
    );
    assert_eq!(execve_argv(&r).unwrap(), [b"x"]);
}

#[test]
fn grouping_by_stamp() {
    let r = recs(
        "type=SYSCALL msg=audit(1.0:5): a=1\n\
         type=SYSCALL msg=audit(1.0:6): a=2\n\
         type=PATH msg=audit(1.0:5): a=3\n\
         type=PATH msg=audit(2.0:5): a=4\n\
         type=PATH msg=audit(1.0:6): a=5\n",
    );
    let ev = group_events(r);
    let vals: Vec<Vec<&[u8]>> = ev
        .iter()
        .map(|e| e.iter().map(|r| r.get(b"a").unwrap()).collect())
        .collect();
    assert_eq!(vals, [vec![&b"1"[..], b"3"], vec![b"2", b"5"], vec![b"4"]]);
}

/// Reads with a buffer of `cap` bytes, so that lines cross buffer boundaries.
fn stream_log(text: &[u8], cap: usize) -> (Vec<Result<Record, String>>, u64) {
    let mut r = LogReader::new(std::io::BufReader::with_capacity(cap, text));
    let out = r.by_ref().map(|x| x.map_err(|e| e.to_string())).collect();
    (out, r.long_lines)
}

#[test]
fn streamed_lines_parse_as_the_whole_log_does() {
    let text = b"type=A msg=audit(1.0:1): a=1\r\n\ntype=B msg=audit(1.0:2): b=\"x y\"\n\r\ntype=C msg=audit(2.5:3): c=3";
    let whole: Vec<_> = parse_log(text).unwrap().into_iter().map(Ok).collect();
    for cap in [1, 2, 7, 64, 1 << 16] {
        assert_eq!(stream_log(text, cap), (whole.clone(), 0), "{cap}");
    }
}

#[test]
fn lines_over_the_cap_are_skipped_and_counted() {
    let head = b"type=X msg=audit(1.0:1): v=";
    let line = |len: usize| {
        let mut l = head.to_vec();
        l.resize(len, b'a');
        l.push(b'\n');
        l
    };
    let mut text = line(MAX_LINE);
    text.extend(line(MAX_LINE + 1));
    text.extend(line(10 * MAX_LINE));
    text.extend(b"bad\n");
    for cap in [3, 1 << 16] {
        let (out, long) = stream_log(&text, cap);
        assert_eq!(long, 2);
        assert_eq!(out.len(), 2);
        assert_eq!(
            out[0].as_ref().unwrap().get(b"v").unwrap().len(),
            MAX_LINE - head.len()
        );
        // Skipped lines still count: the bad one is line 4.
        assert_eq!(out[1], Err("line 4: not an audit record: no type=".into()));
    }
}

#[test]
fn a_nul_byte_ends_the_stream_with_an_error() {
    let text = b"type=X msg=audit(1.0:1): a=1\ntype=Y \0 more\ntype=Z msg=audit(1.0:2): a=2\n";
    let (out, _) = stream_log(text, 5);
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[1],
        Err("line 2: not an audit record: a NUL byte, which audit text never holds".into())
    );
    // An endless run of NULs, or of anything without a line end, is read in bounded memory.
    let mut r = LogReader::new(std::io::BufReader::new(std::io::repeat(0)));
    assert!(r.next().unwrap().is_err());
    assert!(r.next().is_none());
    use std::io::Read;
    let endless = std::io::repeat(b'a').take(50 * MAX_LINE as u64);
    let mut r = LogReader::new(std::io::BufReader::new(endless));
    assert!(r.next().is_none());
    assert_eq!(r.long_lines, 1);
}
