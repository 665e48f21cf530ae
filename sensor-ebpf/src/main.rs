//! The sensor's eBPF programs. Probes live in one module per area; the attach table that the
//! agent follows is `sensor_common::probes::PROBES`.
#![no_std]
#![no_main]

mod exec;
mod exec_entry;
mod exec_exit;
mod exec_state;
mod filter;
mod fs;
mod kernel;
mod libaudit;
mod login;
mod maps;
mod net;
mod pam;
mod path;
mod signal;
mod syscall;
mod syscall_exit;
mod watched;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
