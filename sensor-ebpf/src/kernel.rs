//! Reading kernel structures at offsets the agent resolved from BTF (`OFFSETS`), and the
//! task facts every record needs.

use aya_ebpf::helpers::generated::{bpf_get_current_task, bpf_probe_read_kernel};
use sensor_common::{KernelOffsets, CTR_READ_ERROR};

use crate::maps::count;

/// Filled in by the agent before load (`EbpfLoader::override_global`).
#[unsafe(no_mangle)]
pub static OFFSETS: KernelOffsets = unsafe { core::mem::zeroed() };

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

/// The header of a record about the current task, stamped now.
#[inline(always)]
pub fn header(kind: u32) -> sensor_common::Header {
    let id = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    sensor_common::Header {
        kind,
        tid: id as u32,
        pid: (id >> 32) as u32,
        _pad: 0,
        boot_ns: unsafe { aya_ebpf::helpers::generated::bpf_ktime_get_boot_ns() },
    }
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
        bpf_probe_read_kernel(
            v.as_mut_ptr() as *mut _,
            core::mem::size_of::<T>() as u32,
            (base + off) as *const _,
        )
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
    crate::maps::COUNTERS
        .get(CTR_READ_ERROR)
        .copied()
        .unwrap_or(0)
}

/// The current task's namespaces and cgroup; its own pid namespace is the deepest level of its
/// struct pid.
#[inline(always)]
pub fn task_ns(task: u64) -> sensor_common::TaskNs {
    let nsproxy: u64 = read(task, off!(task_nsproxy));
    let pid: u64 = read(task, off!(task_thread_pid));
    let level: u32 = read(pid, off!(pid_level));
    let upid = pid + off!(pid_numbers) + (level as u64 & 31) * off!(upid_size);
    let pid_ns: u64 = read(upid, off!(upid_ns));
    sensor_common::TaskNs {
        uts_ns: ns_inum(nsproxy, off!(nsproxy_uts), off!(uts_ns)),
        mnt_ns: ns_inum(nsproxy, off!(nsproxy_mnt), off!(mnt_ns)),
        net_ns: ns_inum(nsproxy, off!(nsproxy_net), off!(net_ns)),
        pid_ns: read(pid_ns, off!(pidns_ns) + off!(ns_inum)),
        ns_pid: read(upid, off!(upid_nr)),
        _pad: 0,
        cgroup_id: unsafe { aya_ebpf::helpers::generated::bpf_get_current_cgroup_id() },
    }
}

/// Inode number of a namespace given the nsproxy member offset and the namespace's `ns` offset.
#[inline(always)]
pub fn ns_inum(nsproxy: u64, member: u64, ns_off: u64) -> u32 {
    let ns: u64 = read(nsproxy, member);
    read(ns, ns_off + off!(ns_inum))
}
