//! Path names built in the kernel by walking dentries up to the task's root, crossing mount
//! points, as `d_path()` does. Components are written leaf first, each NUL-terminated, so every
//! write moves forward in the buffer; the agent reverses them.
//!
//! Each walk is a `bpf_loop()` over a callback that takes one step, its state in a [`Walk`] on
//! the walking program's stack: the verifier checks a callback a few times, not once per step,
//! and the state keeps the kernel pointers BTF-typed, so a step reads them with plain loads
//! (`kernel::load`), where a helper read measured about 40 ns each. A `struct mount` is the
//! `vfsmount` inside it, which a typed pointer cannot reach (a negative offset): past the first
//! mount point a walk goes on with helper reads, in [`step_read`].

use core::ffi::c_void;

use aya_ebpf::helpers::generated::{bpf_loop, bpf_probe_read_kernel_str};
use sensor_common::{
    ExecPath, Header, EXEC_PATH_FIXED, KIND_EXEC_PATH, PATH_BUF, PATH_MAX_DEPTH, PATH_NAME_MAX,
    PATH_TASK_CGROUP, PATH_TASK_EXE,
};

use crate::{
    kernel::{load, off, read},
    maps::{output_prefix, SCRATCH_PATH},
};

/// A walk's state. `dentry`, `vfsmnt` and `mnt_root` are BTF-typed and `raw_*` are numbers read
/// with helpers: each callback uses its own, so the verifier sees one type per slot.
#[repr(C)]
struct Walk {
    path: *mut ExecPath,
    dentry: u64,
    vfsmnt: u64,
    /// `vfsmnt->mnt_root`.
    mnt_root: u64,
    root_dentry: u64,
    root_mnt: u64,
    raw_dentry: u64,
    raw_vfsmnt: u64,
    raw_mnt_root: u64,
    len: u64,
    done: u64,
    deleted: u64,
    /// A mount point was reached: the walk goes on from the `raw_*` fields.
    crossed: u64,
}

/// Appends one NUL-terminated name at `w.len`; false when the buffer is full or unreadable.
#[inline(always)]
fn push_name(w: &mut Walk, name: u64) -> bool {
    let len = w.len as usize;
    if len >= PATH_BUF {
        return false;
    }
    let p = unsafe { &mut *w.path };
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

/// One step up from `w.dentry` through typed pointers: its name, then its parent; at its
/// mount's root, the mount point (then the walk goes on in [`step_read`]). 1 stops the loop.
extern "C" fn step_typed(_i: u64, ctx: *mut c_void) -> i64 {
    step::<true>(unsafe { &mut *(ctx as *mut Walk) })
}

/// [`step_typed`] past a mount point, from the `raw_*` fields, with helper reads.
extern "C" fn step_read(_i: u64, ctx: *mut c_void) -> i64 {
    step::<false>(unsafe { &mut *(ctx as *mut Walk) })
}

/// One step of a walk through typed pointers (`TYPED`, with loads) or numbers (helper reads),
/// each in its own fields of `w`; 1 stops the loop.
#[inline(always)]
fn step<const TYPED: bool>(w: &mut Walk) -> i64 {
    let (dentry, vfsmnt, mnt_root) = match TYPED {
        true => (w.dentry, w.vfsmnt, w.mnt_root),
        false => (w.raw_dentry, w.raw_vfsmnt, w.raw_mnt_root),
    };
    if dentry == w.root_dentry && vfsmnt == w.root_mnt {
        w.done = 1;
        return 1;
    }
    if dentry == mnt_root {
        // A typed walk stops at its first mount point and goes on in `step_read`.
        let crossed = cross(w, vfsmnt - off!(mount_mnt));
        return (TYPED || !crossed) as i64;
    }
    let field = |off: u64| -> u64 {
        match TYPED {
            true => load(dentry, off),
            false => read(dentry, off),
        }
    };
    let (parent, name) = (
        field(off!(dentry_parent)),
        field(off!(dentry_name) + off!(qstr_name)),
    );
    if !up(w, dentry, parent, name) {
        return 1;
    }
    match TYPED {
        true => w.dentry = parent,
        false => w.raw_dentry = parent,
    }
    0
}

/// From the root of mount `mnt` to its mount point in its parent mount, into the `raw_*`
/// fields; false at the top of the mount tree (the walk is done) or on a failed read.
#[inline(always)]
fn cross(w: &mut Walk, mnt: u64) -> bool {
    let parent: u64 = read(mnt, off!(mount_parent));
    // The top of the mount tree is its own parent; 0 is a failed read, not a root.
    if parent == mnt || parent == 0 {
        w.done = (parent != 0) as u64;
        return false;
    }
    w.raw_dentry = read(mnt, off!(mount_mountpoint));
    w.raw_vfsmnt = parent + off!(mount_mnt);
    w.raw_mnt_root = read(w.raw_vfsmnt, off!(vfsmount_root));
    w.crossed = 1;
    true
}

/// Adds `dentry`'s `name` below its `parent`; false when the walk ends here.
#[inline(always)]
fn up(w: &mut Walk, dentry: u64, parent: u64, name: u64) -> bool {
    if parent == 0 {
        return false;
    }
    if parent == dentry {
        // A root that is not its mount's: a pseudo file (memfd, an anonymous inode) that
        // d_path() names `/NAME (deleted)` (simple_dname()).
        w.deleted = 1;
        w.done = push_name(w, name) as u64;
        return false;
    }
    push_name(w, name)
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

/// Sends the path of the `struct path` at `path_ptr` (BTF-typed: in the task's `fs` or a
/// `file`), resolved up to the task's root.
#[inline(always)]
pub fn send_path(hdr: Header, which: u32, path_ptr: u64, root: &TaskRoot) {
    let Some(p) = SCRATCH_PATH.get_ptr_mut(0) else {
        return;
    };
    let vfsmnt: u64 = load(path_ptr, off!(path_mnt));
    let leaf: u64 = load(path_ptr, off!(path_dentry));
    // d_path()'s `d_unlinked()`: unhashed and not a root of its own.
    let hashed: u64 = load(leaf, off!(dentry_hash_pprev));
    let leaf_parent: u64 = load(leaf, off!(dentry_parent));
    let mut w = Walk {
        path: p,
        dentry: leaf,
        vfsmnt,
        mnt_root: load(vfsmnt, off!(vfsmount_root)),
        root_dentry: root.dentry,
        root_mnt: root.mnt,
        raw_dentry: 0,
        raw_vfsmnt: 0,
        raw_mnt_root: 0,
        len: 0,
        done: 0,
        deleted: (hashed == 0 && leaf_parent != leaf && leaf_parent != 0) as u64,
        crossed: 0,
    };
    let ctx = &mut w as *mut Walk as *mut c_void;
    // SAFETY: `bpf_loop` calls the step with `ctx`, a live `Walk`, up to the bound.
    let steps = unsafe { bpf_loop(PATH_MAX_DEPTH, step_typed as *mut c_void, ctx, 0) };
    if w.crossed != 0 && steps > 0 && (steps as u32) < PATH_MAX_DEPTH {
        let left = PATH_MAX_DEPTH - steps as u32;
        unsafe { bpf_loop(left, step_read as *mut c_void, ctx, 0) };
    }
    finish(unsafe { &mut *p }, &w, hdr, which);
}

/// Sends the task's cgroup v2 path by walking kernfs nodes up to the hierarchy root (whose own
/// name is not part of the path). No mounts: typed all the way.
#[inline(always)]
fn send_cgroup_path(hdr: Header, task: u64, which: u32) {
    let Some(p) = SCRATCH_PATH.get_ptr_mut(0) else {
        return;
    };
    let css: u64 = load(task, off!(task_cgroups));
    let cgrp: u64 = load(css, off!(cssset_dfl_cgrp));
    let mut w = Walk {
        path: p,
        dentry: load(cgrp, off!(cgroup_kn)),
        vfsmnt: 0,
        mnt_root: 0,
        root_dentry: 0,
        root_mnt: 0,
        raw_dentry: 0,
        raw_vfsmnt: 0,
        raw_mnt_root: 0,
        len: 0,
        done: 0,
        deleted: 0,
        crossed: 0,
    };
    unsafe {
        bpf_loop(
            PATH_MAX_DEPTH,
            step_kernfs as *mut c_void,
            &mut w as *mut Walk as *mut c_void,
            0,
        )
    };
    finish(unsafe { &mut *p }, &w, hdr, which);
}

/// One step up from kernfs node `w.dentry`: its name, then its parent, up to the root.
extern "C" fn step_kernfs(_i: u64, ctx: *mut c_void) -> i64 {
    let w = unsafe { &mut *(ctx as *mut Walk) };
    let kn = w.dentry;
    let parent: u64 = load(kn, off!(kn_parent));
    if parent == 0 {
        w.done = (kn != 0) as u64;
        return 1;
    }
    if !push_name(w, load(kn, off!(kn_name))) {
        return 1;
    }
    w.dentry = parent;
    0
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
