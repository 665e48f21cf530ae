//! Which watch slots an exec's objects are in (`--rules`): the program and its ELF interpreter,
//! by inode or by directory and name (a file just put at a watched path), and, for trees, by
//! the directories above them as the kernel's `audit_tree` tags them (a tree's root, and the
//! roots of the mounts under it).

use core::ffi::c_void;

use aya_ebpf::{
    helpers::generated::{
        bpf_find_vma, bpf_get_current_task_btf, bpf_loop, bpf_probe_read_kernel,
        bpf_probe_read_kernel_str,
    },
    macros::map,
    maps::{HashMap, PerCpuArray},
};
use sensor_common::{
    filter::{Slots, WatchInode, WatchName, WatchSlots, WATCH_MAX, WATCH_NAME_PREFIX},
    PATH_MAX_DEPTH,
};

use crate::kernel::{off, read};

/// Watched objects and trees' tagged directories, by inode, the ones a path held in the last
/// seconds included.
#[map]
static WATCH_INODES: HashMap<WatchInode, WatchSlots> = HashMap::with_max_entries(WATCH_MAX, 0);
/// Watched paths, by directory and name.
#[map]
static WATCH_NAMES: HashMap<WatchName, WatchSlots> = HashMap::with_max_entries(WATCH_MAX, 0);

/// `mm_struct.saved_auxv` pairs read: the whole of it on x86-64 (`AT_VECTOR_SIZE`).
const AUXV_PAIRS: usize = 26;
const AT_NULL: u64 = 0;
const AT_BASE: u64 = 7;

#[map]
static SCRATCH_AUXV: PerCpuArray<[u64; 2 * AUXV_PAIRS]> = PerCpuArray::with_max_entries(1, 0);

/// The slots an exec's objects are in: themselves (`path=`, `exe=`) and with the directories
/// above them (`dir=`).
#[repr(C)]
#[derive(Default)]
pub struct Found {
    pub own: Slots,
    pub tree: Slots,
}

fn or(into: &mut Slots, from: &Slots) {
    for i in 0..into.len() {
        into[i] |= from[i];
    }
}

/// Adds `file`'s slots in `bank`; with `trees`, those of the directories above it.
#[inline(always)]
pub fn add_file(file: u64, bank: usize, trees: bool, found: &mut Found) {
    if file == 0 {
        return;
    }
    let inode: u64 = read(file, off!(file_f_inode));
    let b = bank & 1;
    if let Some(s) = unsafe { WATCH_INODES.get(&inode_key(inode)) } {
        or(&mut found.own, &s[b]);
    }
    let dentry: u64 = read(file, off!(file_f_path) + off!(path_dentry));
    if let Some(s) = unsafe { WATCH_NAMES.get(&name_key(dentry)) } {
        or(&mut found.own, &s[b]);
    }
    if trees {
        let mut c = Climb {
            dentry,
            bank: b as u64,
            tree: [0; 4],
        };
        // A helper-driven loop: the verifier checks `climb` once.
        unsafe {
            bpf_loop(
                PATH_MAX_DEPTH,
                climb as *mut c_void,
                &mut c as *mut Climb as *mut c_void,
                0,
            )
        };
        or(&mut found.tree, &c.tree);
    }
}

#[inline(always)]
fn inode_key(inode: u64) -> WatchInode {
    let sb: u64 = read(inode, off!(inode_sb));
    WatchInode {
        ino: read(inode, off!(inode_ino)),
        dev: read(sb, off!(sb_dev)),
        _pad: 0,
    }
}

/// The directory and the first bytes of the name (a longer name shares its key with others
/// that start alike: more is sent, never less).
#[inline(always)]
fn name_key(dentry: u64) -> WatchName {
    let parent: u64 = read(dentry, off!(dentry_parent));
    let dir = inode_key(read(parent, off!(dentry_inode)));
    let mut name = WatchName {
        dir_ino: dir.ino,
        dir_dev: dir.dev,
        // `qstr.len`, after the 32-bit hash.
        len: read(dentry, off!(dentry_name) + 4),
        name: [0; WATCH_NAME_PREFIX],
    };
    let ptr: u64 = read(dentry, off!(dentry_name) + off!(qstr_name));
    let mut buf = [0u8; WATCH_NAME_PREFIX + 1];
    unsafe {
        bpf_probe_read_kernel_str(
            buf.as_mut_ptr() as *mut _,
            buf.len() as u32,
            ptr as *const _,
        )
    };
    name.name.copy_from_slice(&buf[..WATCH_NAME_PREFIX]);
    name
}

#[repr(C)]
struct Climb {
    dentry: u64,
    bank: u64,
    tree: Slots,
}

/// One step up from a dentry: its inode's slots, then its parent, up to the root of its file
/// system (where `audit_tree` tags a mount's root).
extern "C" fn climb(_i: u64, ctx: *mut c_void) -> i64 {
    let c = unsafe { &mut *(ctx as *mut Climb) };
    let inode: u64 = read(c.dentry, off!(dentry_inode));
    if inode != 0 {
        if let Some(s) = unsafe { WATCH_INODES.get(&inode_key(inode)) } {
            or(&mut c.tree, &s[(c.bank & 1) as usize]);
        }
    }
    let parent: u64 = read(c.dentry, off!(dentry_parent));
    if parent == 0 || parent == c.dentry {
        return 1;
    }
    c.dentry = parent;
    0
}

/// The task's ELF interpreter, as the ELF loader mapped it: the file of the mapping at
/// `AT_BASE`. `Some(0)` for a program without one; `None` when it could not be told.
#[inline(always)]
pub fn interpreter(task: u64) -> Option<u64> {
    let auxv = SCRATCH_AUXV.get_ptr_mut(0)?;
    let auxv = unsafe { &mut *auxv };
    let mm: u64 = read(task, off!(task_mm));
    let ret = unsafe {
        bpf_probe_read_kernel(
            auxv.as_mut_ptr() as *mut _,
            core::mem::size_of_val(auxv) as u32,
            (mm + off!(mm_saved_auxv)) as *const _,
        )
    };
    if ret < 0 {
        return None;
    }
    let mut base = 0;
    for i in 0..AUXV_PAIRS {
        let key = auxv[2 * i];
        if key == AT_NULL {
            break;
        }
        if key == AT_BASE {
            base = auxv[2 * i + 1];
            break;
        }
    }
    if base == 0 {
        return Some(0);
    }
    let mut file: u64 = 0;
    let ret = unsafe {
        bpf_find_vma(
            bpf_get_current_task_btf(),
            base,
            vma_file as *mut c_void,
            &mut file as *mut u64 as *mut c_void,
            0,
        )
    };
    (ret == 0 && file != 0).then_some(file)
}

extern "C" fn vma_file(_task: *mut c_void, vma: *mut c_void, ctx: *mut c_void) -> i64 {
    let out = ctx as *mut u64;
    unsafe { *out = read(vma as u64, off!(vma_vm_file)) };
    0
}
