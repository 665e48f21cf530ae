//! Reading kernel structures at offsets the agent resolved from BTF (`OFFSETS`), and the
//! task facts every record needs.

use aya_ebpf::{
    helpers::generated::{bpf_get_current_task_btf, bpf_probe_read_kernel},
    programs::TracePointContext,
    EbpfContext,
};
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
        mono_ns: unsafe { aya_ebpf::helpers::generated::bpf_ktime_get_ns() },
    }
}

/// Puts `hdr` into a record being built in the ring buffer: a plain assignment there became a
/// call to a byte-by-byte memmove.
#[inline(always)]
pub fn put_header(dst: &mut sensor_common::Header, hdr: sensor_common::Header) {
    // SAFETY: `dst` is a live, aligned header.
    unsafe { core::ptr::write_volatile(dst, hdr) }
}

/// The current task as a BTF-typed pointer: fields are read through it with [`load`].
#[inline(always)]
pub fn current_task() -> u64 {
    unsafe { bpf_get_current_task_btf() as u64 }
}

/// Loads a `T` at `base + off`, where `base` is a BTF-typed kernel pointer: the current task, or
/// a pointer field loaded from one with `load`. A plain load, where [`read`] is a helper call
/// (an exec's exit took 40% less once its task fields were loads): the verifier checks it
/// against the kernel's BTF (the field at that offset must be at least as large: capability
/// sets, two u32 on 6.1, are loaded as halves) and the JIT guards it against faults. A fault
/// reads as zero and is not counted, so `load` is for what the current task holds while it
/// runs: its own structures (cred, mm, fs, nsproxy, files, its executable's inode) and the
/// dentries, mounts and kernfs nodes above its cwd, executable and cgroup, each pinned by the
/// one below it (`path.rs`). A pointer read with [`read`] is an untyped number the verifier
/// refuses to load through, and a typed one takes no variable or negative offset.
#[inline(always)]
pub fn load<T: Copy>(base: u64, off: u64) -> T {
    // SAFETY: the verifier types this load; a fault reads as zero.
    unsafe { core::ptr::read_volatile((base + off) as *const T) }
}

/// The field `off` bytes into a tracepoint's record: a load from the context, which the verifier
/// checks (aligned, past the first 8 bytes, within the largest record), where `read_at` is a
/// helper call. The offset must be a constant, and the caller's to keep within the record.
#[inline(always)]
pub fn tp_field<T: Copy>(ctx: &TracePointContext, off: usize) -> T {
    // SAFETY: a context load the verifier checks.
    unsafe { core::ptr::read_volatile((ctx.as_ptr() as *const u8).add(off) as *const T) }
}

/// A `syscalls:sys_exit_*` record's return value: common fields, `int __syscall_nr`, then
/// `long ret` at 16.
#[inline(always)]
pub fn exit_ret(ctx: &TracePointContext) -> i64 {
    tp_field(ctx, 16)
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

/// Reads a `T` from the current task's memory at `addr`; zero when unreadable (a process's
/// pointer may be anything).
#[inline(always)]
pub fn read_user<T: Copy + Default>(addr: u64) -> T {
    let mut v = T::default();
    unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user(
            &mut v as *mut T as *mut _,
            core::mem::size_of::<T>() as u32,
            addr as *const _,
        )
    };
    v
}

/// This CPU's read-error count, to attribute errors to one event by difference.
#[inline(always)]
pub fn read_errors_so_far() -> u64 {
    crate::maps::COUNTERS
        .get(0)
        .map_or(0, |c| c[CTR_READ_ERROR as usize])
}

/// The current task's namespaces and cgroup; its own pid namespace is the deepest level of its
/// struct pid.
#[inline(always)]
pub fn task_ns(task: u64) -> sensor_common::TaskNs {
    let nsproxy: u64 = load(task, off!(task_nsproxy));
    let pid: u64 = load(task, off!(task_thread_pid));
    let level: u32 = load(pid, off!(pid_level));
    // The task's own level's `upid`. The host's, the first, is at a constant offset, which a
    // typed pointer can be loaded through; a deeper one is read with helpers, since a typed
    // pointer takes no variable offset (and 6.1's `numbers[1]` no index past its first).
    let (pid_ns, ns_pid) = match level {
        0 => {
            let upid = off!(pid_numbers);
            let ns: u64 = load(pid, upid + off!(upid_ns));
            (
                load(ns, off!(pidns_ns) + off!(ns_inum)),
                load(pid, upid + off!(upid_nr)),
            )
        }
        _ => {
            // The pointer read again, untyped: a typed one takes no variable offset (6.1
            // refused this one).
            let pid: u64 = read(task, off!(task_thread_pid));
            let upid = pid + off!(pid_numbers) + (level as u64 & 31) * off!(upid_size);
            let ns: u64 = read(upid, off!(upid_ns));
            (
                read(ns, off!(pidns_ns) + off!(ns_inum)),
                read(upid, off!(upid_nr)),
            )
        }
    };
    sensor_common::TaskNs {
        uts_ns: ns_inum(nsproxy, off!(nsproxy_uts), off!(uts_ns)),
        mnt_ns: ns_inum(nsproxy, off!(nsproxy_mnt), off!(mnt_ns)),
        net_ns: ns_inum(nsproxy, off!(nsproxy_net), off!(net_ns)),
        pid_ns,
        ns_pid,
        _pad: 0,
        cgroup_id: unsafe { aya_ebpf::helpers::generated::bpf_get_current_cgroup_id() },
    }
}

/// Inode number of a namespace given the nsproxy member offset and the namespace's `ns` offset.
#[inline(always)]
pub fn ns_inum(nsproxy: u64, member: u64, ns_off: u64) -> u32 {
    let ns: u64 = load(nsproxy, member);
    load(ns, ns_off + off!(ns_inum))
}

/// auid, ses, uid and gid: the ids ANOM_ABEND and ANOM_PROMISCUOUS show.
#[inline(always)]
pub fn audit_ids(task: u64) -> (u32, u32, u32, u32) {
    let cred: u64 = load(task, off!(task_cred));
    (
        load(task, off!(task_loginuid)),
        load(task, off!(task_sessionid)),
        load(cred, off!(cred_uid)),
        load(cred, off!(cred_gid)),
    )
}

/// ppid, login ids, credentials, comm and tty of the task, as `audit_log_task_info()` and the
/// SYSCALL record read them.
#[inline(always)]
pub fn task_info(task: u64, t: &mut sensor_common::TaskInfo) {
    let parent: u64 = load(task, off!(task_real_parent));
    t.ppid = load(parent, off!(task_tgid));
    t.auid = load(task, off!(task_loginuid));
    t.ses = load(task, off!(task_sessionid));
    let cred: u64 = load(task, off!(task_cred));
    t.uid = load(cred, off!(cred_uid));
    t.gid = load(cred, off!(cred_gid));
    t.euid = load(cred, off!(cred_euid));
    t.suid = load(cred, off!(cred_suid));
    t.fsuid = load(cred, off!(cred_fsuid));
    t.egid = load(cred, off!(cred_egid));
    t.sgid = load(cred, off!(cred_sgid));
    t.fsgid = load(cred, off!(cred_fsgid));
    t.personality = load(task, off!(task_personality));
    // Straight into the record (the helper pads with NULs) and zeroed word by word: a copy of
    // a local array or `[0; 64]` became a call to a byte-by-byte memset or memmove.
    unsafe {
        aya_ebpf::helpers::generated::bpf_get_current_comm(t.comm.as_mut_ptr() as *mut _, 16)
    };
    let tty = t.tty.as_mut_ptr() as *mut u32;
    for i in 0..t.tty.len() / 4 {
        // SAFETY: within `tty`, 4-aligned as `TaskInfo` is.
        unsafe { tty.add(i).write_volatile(0) };
    }
    let signal: u64 = load(task, off!(task_signal));
    let tty: u64 = load(signal, off!(signal_tty));
    if tty != 0 {
        unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_kernel_str(
                t.tty.as_mut_ptr() as *mut _,
                64,
                (tty + off!(tty_name)) as *const _,
            )
        };
    }
}

/// The task's argument area: its start and end in the task's memory.
#[inline(always)]
pub fn arg_area(task: u64) -> (u64, u64) {
    let mm: u64 = load(task, off!(task_mm));
    (load(mm, off!(mm_arg_start)), load(mm, off!(mm_arg_end)))
}

/// The first bytes of the task's argument area, as the kernel's PROCTITLE record takes them;
/// returns how many were read.
#[inline(always)]
pub fn proctitle(task: u64, buf: &mut [u8; sensor_common::PROCTITLE_MAX]) -> u32 {
    proctitle_of(arg_area(task), buf)
}

/// [`proctitle`] of an argument area already loaded ([`arg_area`]).
#[inline(always)]
pub fn proctitle_of((start, end): (u64, u64), buf: &mut [u8; sensor_common::PROCTITLE_MAX]) -> u32 {
    let n = end.saturating_sub(start);
    let n = if n > sensor_common::PROCTITLE_MAX as u64 {
        sensor_common::PROCTITLE_MAX as u64
    } else {
        n
    };
    if n > 0
        && unsafe {
            aya_ebpf::helpers::generated::bpf_probe_read_user(
                buf.as_mut_ptr() as *mut _,
                n as u32,
                start as *const _,
            )
        } == 0
    {
        return n as u32;
    }
    0
}

/// The current task's user registers saved at syscall entry, or 0.
#[inline(always)]
pub fn user_regs() -> u64 {
    unsafe {
        let task = aya_ebpf::helpers::generated::bpf_get_current_task_btf();
        aya_ebpf::helpers::generated::bpf_task_pt_regs(task) as u64
    }
}

/// The six syscall argument registers (x86_64: di si dx r10 r8 r9) from saved user registers,
/// `regs` a BTF-typed `struct pt_regs` (a `sys_exit` argument, or `bpf_task_pt_regs()`'s).
#[inline(always)]
pub fn syscall_args(regs: u64) -> [u64; 6] {
    [
        load(regs, off!(regs_di)),
        load(regs, off!(regs_si)),
        load(regs, off!(regs_dx)),
        load(regs, off!(regs_r10)),
        load(regs, off!(regs_r8)),
        load(regs, off!(regs_r9)),
    ]
}

/// `task->files->fdt->fd[fd]`: the file open as `fd`, or 0.
#[inline(always)]
pub fn fd_file(task: u64, fd: u64) -> u64 {
    let files: u64 = load(task, off!(task_files));
    let fdt: u64 = load(files, off!(files_fdt));
    let max_fds: u32 = load(fdt, off!(fdtable_max_fds));
    // The kernel takes an fd as `unsigned int`: high bits are not part of it.
    let fd = fd & 0xffff_ffff;
    if fd >= max_fds as u64 {
        return 0;
    }
    let fds: u64 = load(fdt, off!(fdtable_fd));
    read(fds, (fd & 0xffff_ffff) * 8)
}
