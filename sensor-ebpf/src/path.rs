//! Path names built in the kernel by walking dentries up to the task's root, crossing mount
//! points, as `d_path()` does. Components are written leaf first, each NUL-terminated, so every
//! write moves forward in the buffer; the agent reverses them.
//!
//! Loop-carried state (current dentry, mount, length) lives in a per-CPU map value, not in
//! registers: the verifier then sees the same state at the top of every iteration whatever path
//! the previous one took, and verification stays linear in the depth.

use aya_ebpf::{helpers::generated::bpf_probe_read_kernel_str, macros::map, maps::PerCpuArray};
use sensor_common::{
    ExecPath, Header, EXEC_PATH_FIXED, KIND_EXEC_PATH, PATH_BUF, PATH_MAX_DEPTH, PATH_NAME_MAX,
    PATH_TASK_CGROUP, PATH_TASK_EXE,
};

use crate::{
    kernel::{load, off, read},
    maps::{output_prefix, SCRATCH_PATH},
};

#[repr(C)]
pub struct Walk {
    node: u64,
    vfsmnt: u64,
    len: u64,
    done: u64,
    deleted: u64,
}

#[map]
static WALK: PerCpuArray<Walk> = PerCpuArray::with_max_entries(1, 0);

/// Appends one NUL-terminated name at `w.len`; false when the buffer is full or unreadable.
#[inline(always)]
fn push_name(p: &mut ExecPath, w: &mut Walk, name: u64) -> bool {
    let len = unsafe { core::ptr::addr_of!(w.len).read_volatile() } as usize;
    if len >= PATH_BUF {
        return false;
    }
    // `len < PATH_BUF` and the buffer has PATH_NAME_MAX spare bytes after PATH_BUF.
    let n = unsafe {
        bpf_probe_read_kernel_str(
            p.data.as_mut_ptr().add(len & (PATH_BUF - 1)) as *mut _,
            PATH_NAME_MAX as u32,
            name as *const _,
        )
    };
    if n <= 0 {
        return false;
    }
    w.len = (len as u64) + (n as u64 & (PATH_NAME_MAX as u64 * 2 - 1));
    true
}

#[inline(always)]
fn finish(p: &mut ExecPath, w: &Walk, hdr: Header, which: u32) {
    let len = if w.len as usize > PATH_BUF + PATH_NAME_MAX {
        PATH_BUF + PATH_NAME_MAX
    } else {
        w.len as usize
    };
    p.hdr = hdr;
    p.hdr.kind = KIND_EXEC_PATH;
    p.which = which;
    p.len = len as u32;
    p.truncated = (w.done == 0) as u32;
    p.deleted = w.deleted as u32;
    output_prefix(p as *const ExecPath, EXEC_PATH_FIXED + len);
}

/// The task's `fs` and its root (`fs->root`), where path walks stop.
pub struct TaskRoot {
    pub fs: u64,
    mnt: u64,
    dentry: u64,
}

impl TaskRoot {
    #[inline(always)]
    pub fn of(task: u64) -> TaskRoot {
        let fs: u64 = load(task, off!(task_fs));
        let root = fs + off!(fs_root);
        TaskRoot {
            fs,
            mnt: load(root, off!(path_mnt)),
            dentry: load(root, off!(path_dentry)),
        }
    }
}

/// Sends the task's executable path (when it has one) and its cgroup path, as `exe_which` and
/// `cgroup_which`; returns `mm->exe_file` (0 when none).
#[inline(always)]
pub fn send_exe_and_cgroup(
    hdr: Header,
    task: u64,
    root: &TaskRoot,
    exe_which: u32,
    cgroup_which: u32,
) -> u64 {
    let mm: u64 = load(task, off!(task_mm));
    let exe_file: u64 = load(mm, off!(mm_exe_file));
    if exe_file != 0 {
        send_path(hdr, exe_which, exe_file + off!(file_f_path), root);
    }
    send_cgroup_path(hdr, task, cgroup_which);
    exe_file
}

/// The exe and cgroup paths that precede a standalone event (PATH_TASK_EXE, PATH_TASK_CGROUP).
#[inline(always)]
pub fn send_task_paths(hdr: Header, task: u64) {
    send_exe_and_cgroup(
        hdr,
        task,
        &TaskRoot::of(task),
        PATH_TASK_EXE,
        PATH_TASK_CGROUP,
    );
}

/// Sends the path of the `struct path` at `path_ptr`, resolved up to the task's root.
#[inline(always)]
pub fn send_path(hdr: Header, which: u32, path_ptr: u64, root: &TaskRoot) {
    let (root_mnt, root_dentry) = (root.mnt, root.dentry);
    let (Some(p), Some(w)) = (SCRATCH_PATH.get_ptr_mut(0), WALK.get_ptr_mut(0)) else {
        return;
    };
    let (p, w) = unsafe { (&mut *p, &mut *w) };
    w.vfsmnt = read(path_ptr, off!(path_mnt));
    w.node = read(path_ptr, off!(path_dentry));
    w.len = 0;
    w.done = 0;
    // d_path()'s `d_unlinked()`: unhashed and not a root of its own.
    let leaf = w.node;
    let hashed: u64 = read(leaf, off!(dentry_hash_pprev));
    let leaf_parent: u64 = read(leaf, off!(dentry_parent));
    w.deleted = (hashed == 0 && leaf_parent != leaf && leaf_parent != 0) as u64;
    for _ in 0..PATH_MAX_DEPTH {
        let (dentry, vfsmnt) = unsafe {
            (
                core::ptr::addr_of!(w.node).read_volatile(),
                core::ptr::addr_of!(w.vfsmnt).read_volatile(),
            )
        };
        if dentry == root_dentry && vfsmnt == root_mnt {
            w.done = 1;
            break;
        }
        let mnt_root: u64 = read(vfsmnt, off!(vfsmount_root));
        if dentry == mnt_root {
            let mnt = vfsmnt - off!(mount_mnt);
            let parent: u64 = read(mnt, off!(mount_parent));
            // The top of the mount tree is its own parent; 0 is a failed read, not a root.
            if parent == mnt || parent == 0 {
                w.done = (parent != 0) as u64;
                break;
            }
            w.node = read(mnt, off!(mount_mountpoint));
            w.vfsmnt = parent + off!(mount_mnt);
            continue;
        }
        let parent: u64 = read(dentry, off!(dentry_parent));
        if parent == 0 {
            break;
        }
        if parent == dentry {
            // A root that is not its mount's: a pseudo file (memfd, an anonymous inode) that
            // d_path() names `/NAME (deleted)` (simple_dname()).
            w.deleted = 1;
            w.done = push_name(p, w, read(dentry, off!(dentry_name) + off!(qstr_name))) as u64;
            break;
        }
        let name: u64 = read(dentry, off!(dentry_name) + off!(qstr_name));
        if !push_name(p, w, name) {
            break;
        }
        w.node = parent;
    }
    finish(p, w, hdr, which);
}

/// Sends the task's cgroup v2 path by walking kernfs nodes up to the hierarchy root (whose own
/// name is not part of the path).
#[inline(always)]
fn send_cgroup_path(hdr: Header, task: u64, which: u32) {
    let (Some(p), Some(w)) = (SCRATCH_PATH.get_ptr_mut(0), WALK.get_ptr_mut(0)) else {
        return;
    };
    let (p, w) = unsafe { (&mut *p, &mut *w) };
    let css: u64 = load(task, off!(task_cgroups));
    let cgrp: u64 = load(css, off!(cssset_dfl_cgrp));
    w.node = read(cgrp, off!(cgroup_kn));
    w.len = 0;
    w.done = 0;
    w.deleted = 0;
    for _ in 0..PATH_MAX_DEPTH {
        let kn = unsafe { core::ptr::addr_of!(w.node).read_volatile() };
        let parent: u64 = read(kn, off!(kn_parent));
        if parent == 0 {
            w.done = (kn != 0) as u64;
            break;
        }
        let name: u64 = read(kn, off!(kn_name));
        if !push_name(p, w, name) {
            break;
        }
        w.node = parent;
    }
    finish(p, w, hdr, which);
}

/// Sends a path argument as the caller passed it (a user string, at most PATH_MAX bytes).
#[inline(always)]
pub fn send_user_string(hdr: Header, which: u32, ptr: u64) {
    let Some(p) = SCRATCH_PATH.get_ptr_mut(0) else {
        return;
    };
    let p = unsafe { &mut *p };
    let n = unsafe {
        aya_ebpf::helpers::generated::bpf_probe_read_user_str(
            p.data.as_mut_ptr() as *mut _,
            PATH_BUF as u32,
            ptr as *const _,
        )
    };
    p.hdr = hdr;
    p.hdr.kind = KIND_EXEC_PATH;
    p.which = which;
    // The helper counts the NUL; an unreadable name is sent empty and marked.
    p.len = if n > 0 { (n - 1) as u32 } else { 0 };
    p.truncated = (n <= 0) as u32;
    p.deleted = 0;
    output_prefix(
        p as *const ExecPath,
        EXEC_PATH_FIXED + (p.len as usize & (PATH_BUF - 1)),
    );
}
