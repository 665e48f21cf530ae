//! Resolves [`KernelOffsets`] from the running kernel's BTF. Member paths may cross anonymous
//! structs and unions (`mm_struct` keeps its fields in one), and a member may carry one of several
//! names across kernel versions (`kernfs_node.parent` became `__parent` in 6.15).

use btf_rs::{Btf, Type};
use sensor_common::KernelOffsets;

#[derive(Debug, thiserror::Error)]
pub enum OffsetError {
    #[error("cannot read kernel BTF at {path}: {source}")]
    Open { path: String, source: btf_rs::Error },
    #[error("kernel BTF has no struct {0}")]
    NoStruct(String),
    #[error("kernel BTF: struct {strukt} has no member {member}")]
    NoMember { strukt: String, member: String },
    #[error("kernel BTF: {0}")]
    Btf(#[from] btf_rs::Error),
}

pub const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

pub struct Resolver {
    btf: Btf,
}

impl Resolver {
    pub fn from_file(path: &str) -> Result<Self, OffsetError> {
        let btf = Btf::from_file(path).map_err(|source| OffsetError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self { btf })
    }

    fn strukt(&self, name: &str) -> Result<btf_rs::Struct, OffsetError> {
        for ty in self.btf.resolve_types_by_name(name).unwrap_or_default() {
            if let Type::Struct(s) = ty {
                if !s.members.is_empty() {
                    return Ok(s);
                }
            }
        }
        Err(OffsetError::NoStruct(name.to_owned()))
    }

    /// Whether the kernel's BTF has a type named `name` (`btf_trace_NAME`: the tracepoint NAME).
    pub fn has_type(&self, name: &str) -> bool {
        self.btf
            .resolve_types_by_name(name)
            .is_ok_and(|types| !types.is_empty())
    }

    /// Byte size of a struct.
    pub fn size_of(&self, name: &str) -> Result<u32, OffsetError> {
        Ok(self.strukt(name)?.size() as u32)
    }

    /// Byte offset of `member` (one of the alternative names) inside struct `name`.
    pub fn offset_of(&self, name: &str, member: &[&str]) -> Result<u32, OffsetError> {
        let s = self.strukt(name)?;
        for candidate in member {
            if let Some(bits) = self.find(&s, candidate)? {
                return Ok(bits / 8);
            }
        }
        Err(OffsetError::NoMember {
            strukt: name.to_owned(),
            member: member.join("|"),
        })
    }

    /// Depth-first search for a named member, descending into anonymous members only.
    fn find(&self, s: &btf_rs::Struct, member: &str) -> Result<Option<u32>, OffsetError> {
        for m in &s.members {
            let name = self.btf.resolve_name(m).unwrap_or_default();
            if name == member {
                return Ok(Some(m.bit_offset()));
            }
            if name.is_empty() {
                let inner = match self.btf.resolve_chained_type(m)? {
                    Type::Struct(inner) | Type::Union(inner) => inner,
                    _ => continue,
                };
                if let Some(bits) = self.find(&inner, member)? {
                    return Ok(Some(m.bit_offset() + bits));
                }
            }
        }
        Ok(None)
    }

    pub fn kernel_offsets(&self) -> Result<KernelOffsets, OffsetError> {
        let o = |s: &str, m: &str| self.offset_of(s, &[m]);
        let both =
            |a: Result<u32, _>, b: Result<u32, _>| a.and_then(|a| b.map(|b| a + b)).unwrap_or(0);
        Ok(KernelOffsets {
            task_real_parent: o("task_struct", "real_parent")?,
            task_tgid: o("task_struct", "tgid")?,
            task_cred: o("task_struct", "cred")?,
            task_flags: o("task_struct", "flags")?,
            task_personality: o("task_struct", "personality")?,
            task_ti_status: o("task_struct", "thread_info")? + o("thread_info", "status")?,
            task_loginuid: o("task_struct", "loginuid")?,
            task_sessionid: o("task_struct", "sessionid")?,
            task_signal: o("task_struct", "signal")?,
            task_nsproxy: o("task_struct", "nsproxy")?,
            task_fs: o("task_struct", "fs")?,
            task_mm: o("task_struct", "mm")?,
            task_thread_pid: o("task_struct", "thread_pid")?,
            task_cgroups: o("task_struct", "cgroups")?,
            cred_uid: o("cred", "uid")?,
            cred_gid: o("cred", "gid")?,
            cred_suid: o("cred", "suid")?,
            cred_sgid: o("cred", "sgid")?,
            cred_euid: o("cred", "euid")?,
            cred_egid: o("cred", "egid")?,
            cred_fsuid: o("cred", "fsuid")?,
            cred_fsgid: o("cred", "fsgid")?,
            cred_cap_inheritable: o("cred", "cap_inheritable")?,
            cred_cap_permitted: o("cred", "cap_permitted")?,
            cred_cap_effective: o("cred", "cap_effective")?,
            cred_cap_ambient: o("cred", "cap_ambient")?,
            cred_user_ns: o("cred", "user_ns")?,
            userns_level: o("user_namespace", "level")?,
            signal_tty: o("signal_struct", "tty")?,
            tty_name: o("tty_struct", "name")?,
            nsproxy_uts: o("nsproxy", "uts_ns")?,
            nsproxy_mnt: o("nsproxy", "mnt_ns")?,
            nsproxy_net: o("nsproxy", "net_ns")?,
            uts_ns: o("uts_namespace", "ns")?,
            mnt_ns: o("mnt_namespace", "ns")?,
            net_ns: o("net", "ns")?,
            pidns_ns: o("pid_namespace", "ns")?,
            ns_inum: o("ns_common", "inum")?,
            pid_level: o("pid", "level")?,
            pid_numbers: o("pid", "numbers")?,
            upid_size: self.size_of("upid")?,
            upid_nr: o("upid", "nr")?,
            upid_ns: o("upid", "ns")?,
            fs_pwd: o("fs_struct", "pwd")?,
            fs_root: o("fs_struct", "root")?,
            path_mnt: o("path", "mnt")?,
            path_dentry: o("path", "dentry")?,
            mm_arg_start: o("mm_struct", "arg_start")?,
            mm_arg_end: o("mm_struct", "arg_end")?,
            mm_exe_file: o("mm_struct", "exe_file")?,
            mm_saved_auxv: o("mm_struct", "saved_auxv")?,
            vma_vm_file: o("vm_area_struct", "vm_file")?,
            file_f_path: o("file", "f_path")?,
            file_f_inode: o("file", "f_inode")?,
            inode_ino: o("inode", "i_ino")?,
            inode_mode: o("inode", "i_mode")?,
            inode_uid: o("inode", "i_uid")?,
            inode_gid: o("inode", "i_gid")?,
            inode_rdev: o("inode", "i_rdev")?,
            inode_sb: o("inode", "i_sb")?,
            sb_dev: o("super_block", "s_dev")?,
            dentry_parent: o("dentry", "d_parent")?,
            dentry_name: o("dentry", "d_name")?,
            dentry_inode: o("dentry", "d_inode")?,
            dentry_hash_pprev: o("dentry", "d_hash")? + o("hlist_bl_node", "pprev")?,
            qstr_name: o("qstr", "name")?,
            vfsmount_root: o("vfsmount", "mnt_root")?,
            mount_parent: o("mount", "mnt_parent")?,
            mount_mountpoint: o("mount", "mnt_mountpoint")?,
            mount_mnt: o("mount", "mnt")?,
            cssset_dfl_cgrp: o("css_set", "dfl_cgrp")?,
            cgroup_kn: o("cgroup", "kn")?,
            kn_name: o("kernfs_node", "name")?,
            kn_parent: self.offset_of("kernfs_node", &["__parent", "parent"])?,
            bprm_argc: o("linux_binprm", "argc")?,
            bprm_filename: o("linux_binprm", "filename")?,
            bprm_interp: o("linux_binprm", "interp")?,
            signal_flags: o("signal_struct", "flags")?,
            regs_di: o("pt_regs", "di")?,
            regs_si: o("pt_regs", "si")?,
            regs_dx: o("pt_regs", "dx")?,
            regs_r10: o("pt_regs", "r10")?,
            regs_r8: o("pt_regs", "r8")?,
            regs_r9: o("pt_regs", "r9")?,
            regs_orig_ax: o("pt_regs", "orig_ax")?,
            sb_magic: o("super_block", "s_magic")?,
            proc_inode_vfs_inode: o("proc_inode", "vfs_inode")?,
            proc_inode_pid: o("proc_inode", "pid")?,
            task_files: o("task_struct", "files")?,
            files_fdt: o("files_struct", "fdt")?,
            fdtable_max_fds: o("fdtable", "max_fds")?,
            fdtable_fd: o("fdtable", "fd")?,
            file_private_data: o("file", "private_data")?,
            file_f_cred: o("file", "f_cred")?,
            socket_sk: o("socket", "sk")?,
            sock_family: o("sock", "__sk_common")? + o("sock_common", "skc_family")?,
            sock_protocol: o("sock", "sk_protocol")?,
            // Where the kernel lacks them, 0: the exec programs then know no seccomp filter,
            // or no cache of what the filters allow.
            task_seccomp_filter: both(o("task_struct", "seccomp"), o("seccomp", "filter")),
            seccomp_filter_allow_native: both(
                o("seccomp_filter", "cache"),
                o("action_cache", "allow_native"),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs the running kernel's BTF, as the sensor does: without it this fails.
    #[test]
    fn resolves_every_offset_on_this_kernel() {
        let r = Resolver::from_file(VMLINUX_BTF).unwrap();
        let o = r.kernel_offsets().unwrap();
        // Layout facts that hold on every kernel since 5.8.
        assert_eq!(o.path_mnt, 0);
        assert_eq!(o.path_dentry, 8);
        assert_eq!(o.upid_size, 16);
        assert_eq!(o.cred_uid + 4, o.cred_gid);
        assert_ne!(o.task_cred, 0);
        assert!(o.mm_arg_end == o.mm_arg_start + 8);
        // What the libaudit send check reads: `sock_common` leads `sock`, `private_data` and
        // `f_cred` are distinct members of `file`.
        assert!(o.sock_family < o.sock_protocol);
        assert_ne!(o.file_private_data, o.file_f_cred);
        assert_ne!(o.cred_user_ns, 0);
        // Seccomp's filter pointer and its cache of what the filters allow (5.11 on).
        assert_ne!(o.task_seccomp_filter, 0);
        assert_ne!(o.seccomp_filter_allow_native, 0);
        assert!(r.has_type("btf_trace_sched_process_exec"));
        assert!(!r.has_type("btf_trace_sensor_no_such_tracepoint"));
    }
}
