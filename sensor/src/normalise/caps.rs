//! Capabilities across an exec: file capabilities from `security.capability` (what PATH
//! `cap_f*=` shows) and the kernel's decision to write BPRM_FCAPS, transcribed from
//! `nonroot_raised_pE()` in security/commoncap.c.

use std::{ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use crate::event::{BprmFcaps, Caps, FileCaps};

const VFS_CAP_REVISION_MASK: u32 = 0xff00_0000;
const VFS_CAP_FLAGS_EFFECTIVE: u32 = 0x1;

/// Parses a `vfs_cap_data` / `vfs_ns_cap_data` xattr value (revisions 1 to 3).
pub fn parse_vfs_cap(raw: &[u8]) -> Option<FileCaps> {
    let le = |o: usize| {
        raw.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let magic = le(0)?;
    let version = (magic & VFS_CAP_REVISION_MASK) >> 24;
    let (words, len) = match version {
        1 => (1, 12),
        2 => (2, 20),
        3 => (2, 24),
        _ => return None,
    };
    if raw.len() < len {
        return None;
    }
    let mut caps = FileCaps {
        version,
        effective: magic & VFS_CAP_FLAGS_EFFECTIVE != 0,
        ..FileCaps::default()
    };
    for w in 0..words {
        caps.permitted |= (le(4 + 8 * w)? as u64) << (32 * w);
        caps.inheritable |= (le(8 + 8 * w)? as u64) << (32 * w);
    }
    if version == 3 {
        caps.rootid = le(20)?;
    }
    Some(caps)
}

/// The file capabilities of `path`, all zero when it has none (or cannot be read).
pub fn file_caps(path: &Path) -> FileCaps {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return FileCaps::default();
    };
    let mut buf = [0u8; 32];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let n = unsafe {
        libc::getxattr(
            c_path.as_ptr(),
            c"security.capability".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return FileCaps::default();
    }
    parse_vfs_cap(&buf[..n as usize]).unwrap_or_default()
}

/// Every capability this kernel knows (`CAP_FULL_SET`).
pub fn full_set() -> u64 {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    }
}

fn subset(a: u64, b: u64) -> bool {
    a & !b == 0
}

/// Ids the decision needs: real uid before, real and effective uid after.
#[derive(Clone, Copy, Debug)]
pub struct Ids {
    pub old_uid: u32,
    pub new_uid: u32,
    pub new_euid: u32,
}

/// `nonroot_raised_pE()`, assuming `root_privileged()` (no SECURE_NOROOT securebit): the
/// sensor does not capture securebits.
pub fn bprm_fcaps(ids: Ids, old: Caps, new: Caps, file: FileCaps, full: u64) -> Option<BprmFcaps> {
    let has_fcap = file.version != 0;
    let is_eff = ids.new_euid == 0;
    let is_real = ids.new_uid == 0;
    let is_suid = !is_real && is_eff;
    let is_setuid = ids.new_uid != ids.old_uid;
    let full_eff = subset(full, new.effective);
    let grew = !subset(new.effective, new.ambient);
    let raised = (grew && !(full_eff && (is_eff || is_real)))
        || (is_suid && !full_eff)
        || (!is_setuid
            && ((has_fcap && !subset(new.permitted, old.permitted))
                || !subset(new.ambient, old.ambient)));
    raised.then_some(BprmFcaps { file, old, new })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: u64 = 0x1ff_ffff_ffff;

    fn caps(p: u64, e: u64) -> Caps {
        Caps {
            inheritable: 0,
            permitted: p,
            effective: e,
            ambient: 0,
        }
    }

    #[test]
    fn root_with_full_caps_is_not_reported() {
        let ids = Ids {
            old_uid: 0,
            new_uid: 0,
            new_euid: 0,
        };
        assert_eq!(
            bprm_fcaps(
                ids,
                caps(FULL, FULL),
                caps(FULL, FULL),
                FileCaps::default(),
                FULL
            ),
            None
        );
    }

    #[test]
    fn root_missing_one_cap_is_reported_as_the_kernel_does() {
        // Seen from real auditd in a sandbox whose bounding set lacks CAP_SYS_RESOURCE.
        let set = 0x0000_01ff_feff_ffff;
        let ids = Ids {
            old_uid: 0,
            new_uid: 0,
            new_euid: 0,
        };
        let got = bprm_fcaps(
            ids,
            caps(set, set),
            caps(set, set),
            FileCaps::default(),
            FULL,
        )
        .unwrap();
        assert_eq!(got.new.effective, set);
    }

    #[test]
    fn unprivileged_exec_is_not_reported() {
        let ids = Ids {
            old_uid: 1000,
            new_uid: 1000,
            new_euid: 1000,
        };
        assert_eq!(
            bprm_fcaps(ids, caps(0, 0), caps(0, 0), FileCaps::default(), FULL),
            None
        );
    }

    #[test]
    fn file_capabilities_raising_permitted_are_reported() {
        let file = FileCaps {
            permitted: 1 << 13,
            effective: true,
            version: 2,
            ..FileCaps::default()
        };
        let ids = Ids {
            old_uid: 1000,
            new_uid: 1000,
            new_euid: 1000,
        };
        assert!(bprm_fcaps(ids, caps(0, 0), caps(1 << 13, 1 << 13), file, FULL).is_some());
    }

    #[test]
    fn setuid_root_binary_with_partial_caps_is_reported() {
        let ids = Ids {
            old_uid: 1000,
            new_uid: 1000,
            new_euid: 0,
        };
        assert!(bprm_fcaps(ids, caps(0, 0), caps(0xff, 0xff), FileCaps::default(), FULL).is_some());
    }

    #[test]
    fn parses_every_revision() {
        // v2, effective, cap_net_raw (13) permitted.
        let mut v2 = vec![0x01, 0, 0, 0x02];
        v2.extend_from_slice(&(1u32 << 13).to_le_bytes());
        v2.extend_from_slice(&[0; 12]);
        let c = parse_vfs_cap(&v2).unwrap();
        assert_eq!(
            (c.version, c.effective, c.permitted, c.inheritable),
            (2, true, 1 << 13, 0)
        );
        let mut v3 = v2.clone();
        v3[3] = 0x03;
        v3.extend_from_slice(&1000u32.to_le_bytes());
        assert_eq!(parse_vfs_cap(&v3).unwrap().rootid, 1000);
        let v1 = [0, 0, 0, 0x01, 1, 0, 0, 0, 2, 0, 0, 0];
        assert_eq!(
            parse_vfs_cap(&v1).unwrap(),
            FileCaps {
                permitted: 1,
                inheritable: 2,
                version: 1,
                ..FileCaps::default()
            }
        );
        assert_eq!(parse_vfs_cap(&v2[..19]), None);
        assert_eq!(parse_vfs_cap(&[0, 0, 0, 0x09]), None);
    }
}
