//! Reading kernel structures at offsets the agent resolved from BTF (`OFFSETS`), and the
//! task facts every record needs.

use aya_ebpf::helpers::generated::{bpf_get_current_task, bpf_probe_read_kernel};
use sensor_common::{KernelOffsets, CTR_READ_ERROR};

use crate::maps::count;

/// Filled in by the agent before load (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
pub static OFFSETS: KernelOffsets = KernelOffsets {
    task_real_parent: 0, task_tgid: 0, task_cred: 0, task_loginuid: 0, task_sessionid: 0,
    task_signal: 0, task_nsproxy: 0, task_fs: 0, task_mm: 0, task_thread_pid: 0,
    task_cgroups: 0, cred_uid: 0, cred_gid: 0, cred_suid: 0, cred_sgid: 0, cred_euid: 0,
    cred_egid: 0, cred_fsuid: 0, cred_fsgid: 0, cred_cap_inheritable: 0, cred_cap_permitted: 0,
    cred_cap_effective: 0, cred_cap_ambient: 0, signal_tty: 0, tty_name: 0, nsproxy_uts: 0,
    nsproxy_mnt: 0, nsproxy_net: 0, uts_ns: 0, mnt_ns: 0, net_ns: 0, pidns_ns: 0, ns_inum: 0,
    pid_level: 0, pid_numbers: 0, upid_size: 0, upid_nr: 0, upid_ns: 0, fs_pwd: 0, fs_root: 0,
    path_mnt: 0, path_dentry: 0, mm_arg_start: 0, mm_arg_end: 0, mm_exe_file: 0,
    file_f_path: 0, file_f_inode: 0, inode_ino: 0, inode_mode: 0, inode_uid: 0, inode_gid: 0,
    inode_rdev: 0, inode_sb: 0, sb_dev: 0, dentry_parent: 0, dentry_name: 0, qstr_name: 0,
    vfsmount_root: 0, mount_parent: 0, mount_mountpoint: 0, mount_mnt: 0, cssset_dfl_cgrp: 0,
    cgroup_kn: 0, kn_name: 0, kn_parent: 0, bprm_argc: 0, bprm_filename: 0, bprm_interp: 0,
};

/// One offset from `OFFSETS`. The volatile read keeps the compiler from folding the zero
/// initialiser into the code: the real value is only known at load time.
macro_rules! off {
    ($field:ident) => {
        crate::kernel::offset(&crate::kernel::OFFSETS.$field)
    };
}
pub(crate) use off;

#[inline(always)]
pub fn offset(field: &u32) -> u64 {
    unsafe { core::ptr::read_volatile(field) as u64 }
}

#[inline(always)]
pub fn current_task() -> u64 {
    unsafe { bpf_get_current_task() }
}

/// Reads a `T` at `base + off`. The helper zeroes the destination on failure, and the failure is
/// counted (`CTR_READ_ERROR`), so one unreadable field never costs the whole event. Both paths
/// leave the same verifier state behind, which keeps verification linear.
#[inline(always)]
pub fn read<T: Copy>(base: u64, off: u64) -> T {
    let mut v = core::mem::MaybeUninit::<T>::uninit();
    let ret = unsafe {
        bpf_probe_read_kernel(v.as_mut_ptr() as *mut _, core::mem::size_of::<T>() as u32, (base + off) as *const _)
    };
    if ret != 0 {
        count(CTR_READ_ERROR);
    }
    // SAFETY: the helper wrote all bytes (zeroes on failure); every T used here is plain data.
    unsafe { v.assume_init() }
}

/// This CPU's read-error count, to attribute errors to one event by difference.
#[inline(always)]
pub fn read_errors_so_far() -> u64 {
    crate::maps::COUNTERS.get(CTR_READ_ERROR).copied().unwrap_or(0)
}

/// Inode number of a namespace given the nsproxy member offset and the namespace's `ns` offset.
#[inline(always)]
pub fn ns_inum(nsproxy: u64, member: u64, ns_off: u64) -> u32 {
    let ns: u64 = read(nsproxy, member);
    read(ns, ns_off + off!(ns_inum))
}
