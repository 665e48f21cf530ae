//! Fixtures of the user-message and PAM tests: events as the model holds them.

use crate::event::*;

pub fn stamp(serial: u64) -> Stamp {
    Stamp {
        sec: 1_795_654_095,
        nsec: 700_123_456,
        serial,
    }
}

pub fn container(id: Option<&str>) -> Container {
    Container {
        cgroup_id: 4242,
        cgroup_path: b"/system.slice/docker-c0ffee.scope".to_vec(),
        pid_ns: 4026531836,
        mnt_ns: 4026531841,
        net_ns: 4026531840,
        uts_ns: 4026531838,
        ns_pid: 7,
        container_id: id.map(String::from),
    }
}

pub fn user_message(serial: u64, msg_type: u32, text: &[u8]) -> UserMessageEvent {
    UserMessageEvent {
        stamp: stamp(serial),
        boot_ns: 1_000 + serial,
        msg_type,
        pid: 20120,
        uid: 0,
        auid: UNSET_ID,
        ses: UNSET_ID,
        text: text.to_vec(),
        truncated: false,
        trusted: true,
        exe: Some(b"/usr/bin/pamtester".to_vec()),
        container: container(None),
        paths_truncated: PathsTruncated::default(),
    }
}

pub fn bytes(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

pub fn pam(serial: u64, function: PamFunction) -> PamEvent {
    PamEvent {
        stamp: stamp(serial),
        boot_ns: 2_000 + serial,
        function,
        flags: 0x8002,
        retval: 6,
        pid: 20120,
        uid: 1000,
        auid: 1000,
        ses: 3,
        items: Some(PamItems {
            service: bytes("sshd"),
            user: bytes("ro ot"),
            rhost: bytes("203.0.113.9"),
            ruser: bytes("alice"),
            tty: bytes("ssh"),
        }),
        modules: vec![
            ModuleResult {
                module: "pam_access".into(),
                function: "pam_sm_acct_mgmt".into(),
                retval: 6,
            },
            ModuleResult {
                module: "pam_unix".into(),
                function: "pam_sm_acct_mgmt".into(),
                retval: 0,
            },
        ],
        libpam_reported: false,
        anomalies: vec![
            LoginAnomaly {
                msg_type: 2104,
                module: "pam_access".into(),
                rule: "access_origin".into(),
            },
            LoginAnomaly {
                msg_type: 2101,
                module: "pam_time".into(),
                rule: "time".into(),
            },
        ],
        exe: Some(b"/usr/sbin/sshd".to_vec()),
        container: container(Some("c0ffee")),
        paths_truncated: PathsTruncated {
            cwd: false,
            exe: false,
            cgroup: true,
        },
    }
}
